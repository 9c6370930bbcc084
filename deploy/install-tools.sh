#!/usr/bin/env bash
# Debian packages the deploy, paging and browser tests run for real: promtool, amtool,
# docker-compose (config validation only), chromium and chromedriver. Installs only what is
# missing; apt keeps its package cache, so a second run on the same machine is quick.
set -euo pipefail
declare -A want=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [amtool]=prometheus-alertmanager
  [prometheus-alertmanager]=prometheus-alertmanager
  [docker-compose]=docker-compose
  [chromium]=chromium
  [chromedriver]=chromium-driver
)
missing=()
for tool in "${!want[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${want[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: $packages" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
