from hypothesis import given
from hypothesis import strategies as st

from streams.cardmask import is_card_number, luhn_valid, mask_bytes, mask_text


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
