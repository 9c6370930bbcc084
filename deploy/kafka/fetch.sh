#!/usr/bin/env bash
# Fetch the Apache Kafka broker's jars from Maven Central into a cache outside git, once.
# Prints the directory holding the jars. Maven's own cache (~/.m2) makes a refetch quick.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
cache="${POSGUARD_CACHE:-$HOME/.cache/posguard}/kafka-$version"
if [[ ! -f "$cache/.complete" ]]; then
    rm -rf "$cache"
    mkdir -p "$cache"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$cache/libs" >&2
    touch "$cache/.complete"
fi
echo "$cache/libs"
