from hypothesis import given
from hypothesis import strategies as st

from streams.cardmask import (
    id_has_card_number,
    is_card_number,
    issued_by_a_network,
    luhn_valid,
    mask_bytes,
    mask_text,
)
from tests.bench.bench_ids import rates


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_masking_keeps_first_six_and_last_four() -> None:
    assert mask_text("card 4111111111111111 end") == "card 411111******1111 end"
    assert mask_text("4111 1111 1111 1111") == "411111******1111"
    assert mask_bytes(b'{"x":"4111-1111-1111-1111"}') == b'{"x":"411111******1111"}'


def test_numbers_that_are_not_card_numbers_are_left_alone() -> None:
    assert mask_text("4111111111111112") == "4111111111111112"  # fails Luhn
    assert mask_text("123456789012") == "123456789012"  # 12 digits
    assert mask_text("2026-03-02T10:00:00Z") == "2026-03-02T10:00:00Z"
    assert not is_card_number("tok_4111111111111111")


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_any_luhn_valid_13_to_19_digit_run_is_masked(body: str) -> None:
    pan = _with_check_digit(body)
    masked = mask_text(f"x {pan} y")
    assert pan not in masked
    assert masked == f"x {pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]} y"
    assert is_card_number(pan)


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789 -", max_size=30),
            st.text(alphabet='0123456789 -x:"T', max_size=12),
            st.text(alphabet="0123456789", min_size=12, max_size=18).map(_with_check_digit),
        ),
        max_size=6,
    ).map("".join)
)
def test_bytes_masking_equals_text_masking(text: str) -> None:
    """The bytes path rejects most messages without the regex; it must never disagree."""
    assert mask_bytes(text.encode()) == mask_text(text).encode()


# Published test card numbers of the networks (not real cards).
_TEST_PANS = (
    "4111111111111111",  # Visa
    "4012888888881881",
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "6200000000000005",  # UnionPay
    "30569309025904",  # Diners Club
)


def test_the_default_check_refuses_free_standing_card_numbers_in_ids() -> None:
    for pan in _TEST_PANS:
        assert id_has_card_number(pan, "networks"), pan
        assert id_has_card_number(f"ORD-{pan}", "networks"), pan
        assert id_has_card_number(f"{pan[:4]} {pan[4:8]} {pan[8:12]} {pan[12:]}", "networks")
        assert not id_has_card_number(pan, "off")


def test_digits_glued_to_letters_or_digits_are_an_id() -> None:
    assert not id_has_card_number("TX2304730006206", "networks")  # the run passes Luhn
    assert luhn_valid("2304730006206")
    assert not id_has_card_number("TX2304730006206", "luhn")
    assert not id_has_card_number("41111111111111110", "luhn")  # 17 digits, fails Luhn
    assert not id_has_card_number("411111111111111111111", "luhn")  # 21 digits


def test_luhn_is_stricter_than_networks() -> None:
    number = "1000000000000008"  # passes Luhn, no network issues cards starting with 1
    assert luhn_valid(number)
    assert not issued_by_a_network(number)
    assert not id_has_card_number(number, "networks")
    assert id_has_card_number(number, "luhn")


def test_false_positive_rates_of_the_default() -> None:
    """Reported by ``python -m tests.bench.bench_ids``; a numeric 13-19 digit id that passes Luhn
    in a network's range cannot be told from a card number, every other shape passes."""
    table = rates(4000)
    for name, row in table.items():
        if "numeric" in name and ("12 digits" in name or "20 digits" in name):
            assert row["networks"] == 0.0, name
        elif "numeric" in name or "dash" in name:
            assert 0.0 < row["networks"] < 0.05 < row["luhn"] < 0.15, (name, row)
        else:
            assert row["networks"] == row["luhn"] == 0.0, name
