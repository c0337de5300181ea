from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from maas_ray.security import log_masking
from maas_ray.security.log_masking import (
    MaskingFilter,
    install_log_masking,
    install_replica_logging,
    mask_fields_in_text,
    mask_value,
)
from maas_ray.security.masking import mask_text

# Computed here, independently of the module, so the test data are known to be valid.
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """``prefix`` with the one check digit that makes it pass Luhn."""
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))


def cn_id(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _CN_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


VALID_CN_ID = cn_id("11010519491231002")


def test_test_data_are_what_they_claim() -> None:
    assert VALID_CN_ID == "11010519491231002X"
    for card in ("4111111111111111", "5555555555554444", "378282246310005", "6212345678901232"):
        assert luhn_ok(card), card
    assert not luhn_ok("4111111111111112")


# --- each pattern is masked -------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "john.doe@example.com",
        "John_Doe-1@Example.COM",
        "li.wei+maas@mail.example.co.uk",
        "13800138000@qq.com",
    ],
)
def test_emails_are_masked(email: str) -> None:
    assert mask_text(f"user {email} sent a request") == "user <email> sent a request"
    assert mask_text(f"<{email}>,") == "<<email>>,"


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138-0013-8000",
        "+8613800138000",
        "008613800138000",
        "86 13800138000",
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "+1-415-555-2671",
        "+33 1 23 45 67 89",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
    ],
)
def test_phone_numbers_are_masked(phone: str) -> None:
    assert mask_text(f"call {phone} now") == "call <phone> now"
    assert mask_text(f"phone={phone};") == "phone=<phone>;"


def test_personal_data_inside_chinese_text_is_masked() -> None:
    assert mask_text("手机号13800138000已注册") == "手机号<phone>已注册"
    assert mask_text("邮箱wang.fang@example.cn。") == "邮箱<email>。"


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111111111111111",
        "5555-5555-5555-4444",
        "378282246310005",
        "3782 822463 10005",
        "6212345678901232",
        luhn_complete("222100000000000"),  # Mastercard 2-series
        luhn_complete("601100000000000"),  # Discover
        luhn_complete("353000000000000"),  # JCB
        luhn_complete("3056930902590"),  # Diners, 14 digits
        luhn_complete("621234567890123456"),  # UnionPay, 19 digits
    ],
)
def test_card_numbers_are_masked(card: str) -> None:
    assert luhn_ok(card.replace(" ", "").replace("-", ""))
    assert mask_text(f"card: {card}.") == "card: <card>."


def test_valid_cn_resident_id_is_masked() -> None:
    assert mask_text(f"id {VALID_CN_ID} rejected") == "id <national-id> rejected"
    assert mask_text(f"id {VALID_CN_ID.lower()}") == "id <national-id>"
    other = cn_id("44030420000229123")  # born on a leap day
    assert mask_text(f"身份证{other}") == "身份证<national-id>"


def test_cn_id_with_wrong_check_digit_or_date_is_left_alone() -> None:
    bad = wrong_check(VALID_CN_ID)
    assert mask_text(f"id {bad} rejected") == f"id {bad} rejected"
    no_such_day = cn_id("11010519490230002")  # 30 February
    assert mask_text(no_such_day) == no_such_day
    too_old = cn_id("11010518491231002")  # born 1849
    assert mask_text(too_old) == too_old


def test_ssn_is_masked_and_impossible_ones_are_not() -> None:
    assert mask_text("ssn 123-45-6789 on file") == "ssn <national-id> on file"
    for impossible in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"):
        assert mask_text(f"ref {impossible}") == f"ref {impossible}"


def test_several_kinds_in_one_message() -> None:
    text = (
        f"customer a.b@example.org (tel +86 138 0013 8000, card 4111-1111-1111-1111, "
        f"id {VALID_CN_ID}) failed"
    )
    assert mask_text(text) == (
        "customer <email> (tel <phone>, card <card>, id <national-id>) failed"
    )


def test_masking_is_idempotent() -> None:
    once = mask_text("john@example.com 13800138000 4111111111111111 123-45-6789")
    assert mask_text(once) == once


# --- ordinary text is left alone ---------------------------------------------------------

ORDINARY = [
    "1.2.3",
    "v10",
    "2026-11-23T17:48:04Z",
    "2026-11-23 17:48:04",
    "2026-11-23T17:48:04.123456+08:00",
    hashlib.sha256(b"model").hexdigest(),
    hashlib.sha256(b"13800138000").hexdigest(),
    str(uuid.UUID("12345678-1234-5678-1234-567812345678")),
    str(uuid.uuid5(uuid.NAMESPACE_DNS, "maas")),
    "[5.1, 3.5, 1.4, 0.2]",
    "[[0.41111111111111111, 0.13800138000, 0.58888888888888889]]",
    "127.0.0.1:8000",
    "http://10.0.12.7:8265/api/serve/applications/",
    "1763900000",
    "1763900000123",
    "1234.56",
    "+12345.678",
    "The model iris version 3 failed to load after 2 retries in 12.5 seconds.",
    "30000-30999",
    "4111111111111112",  # 16 digits, fails Luhn
    "9111111111111111",  # passes Luhn, no issuer starts with 9
    "12345678901234567890",
    "models:/iris@champion",
    "pip install mlflow@3.17.0",
    "0x13800138000",
    "order_13800138000a",
    "[415 555 2671]",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_ordinary_error_message_is_left_alone() -> None:
    text = (
        "InvalidInput: model iris v3 expected 4 columns [sepal_length, sepal_width, "
        "petal_length, petal_width] but got 3 at 2026-11-23T17:48:04Z (request 9f1c2a7e-"
        "3b1d-4c8e-9a2f-1e5d7c3b9a10, batch 1763900000123, took 12.5 ms)"
    )
    assert mask_text(text) == text


# --- mask_value ----------------------------------------------------------------------------


def test_mask_value_nested() -> None:
    value = {
        "Name": "Li Wei",
        "contact": {"email": "li.wei@example.com", "notes": ["call 13800138000", 3]},
        "rows": [{"SSN": "123-45-6789", "age": 41}, ("x@y.io", 1.5, None, True)],
        "score": 0.93,
    }
    masked = mask_value(value, fields=["name", "ssn"])
    assert masked == {
        "Name": "***",
        "contact": {"email": "<email>", "notes": ["call <phone>", 3]},
        "rows": [{"SSN": "***", "age": 41}, ("<email>", 1.5, None, True)],
        "score": 0.93,
    }
    assert value["Name"] == "Li Wei"  # the input is not modified


def test_mask_value_masks_any_value_of_a_named_field() -> None:
    masked = mask_value({"PHONE": 13800138000, "Card": {"n": "x"}, "id": [1, 2]}, ["phone", "CARD"])
    assert masked == {"PHONE": "***", "Card": "***", "id": [1, 2]}


def test_mask_value_leaves_scalars_and_unnamed_fields() -> None:
    assert mask_value(42) == 42
    assert mask_value(None) is None
    assert mask_value("plain text") == "plain text"
    assert mask_value({"name": "x"}) == {"name": "x"}


# --- mask_fields_in_text ------------------------------------------------------------------


def test_mask_fields_in_text_dict_record() -> None:
    record = {"inputs": {"customer_name": "Zhang San", "age": 35, "city": "Beijing"}}
    text = "bad input {'customer_name': 'Zhang San', 'age': 35, 'city': 'Beijing'}"
    assert (
        mask_fields_in_text(text, record, ["Customer_Name", "age"])
        == "bad input {'customer_name': '***', 'age': ***, 'city': 'Beijing'}"
    )


def test_mask_fields_in_text_list_of_dicts() -> None:
    record = {
        "dataframe_records": [
            {"name": "Alice Smith", "income": 52000.0, "x": 1},
            {"name": "Bob Jones", "income": 61000.5, "x": 2},
        ]
    }
    text = "could not convert: Alice Smith, 52000, Bob Jones, 61000.5; email bob@example.com"
    assert mask_fields_in_text(text, record, ["name", "income"]) == (
        "could not convert: ***, ***, ***, ***; email <email>"
    )


def test_mask_fields_in_text_dataframe_split() -> None:
    record = {
        "dataframe_split": {
            "columns": ["id", "Name", "amount"],
            "data": [[1, "Wang Fang", 12.5], [2, "Chen Jie", 7.25]],
        }
    }
    text = "row 1: id=1 name='Wang Fang' amount=12.5; row 2: id=2 name='Chen Jie' amount=7.25"
    assert mask_fields_in_text(text, record, ["name"]) == (
        "row 1: id=1 name='***' amount=12.5; row 2: id=2 name='***' amount=7.25"
    )


def test_mask_fields_in_text_quoted_forms_and_short_values() -> None:
    record = {"inputs": [{"name": "张三", "note": "a\nb", "tag": "x"}]}
    text = 'got {"name": "\\u5f20\\u4e09", "note": "a\\nb", "tag": "x"} and 张三'
    assert mask_fields_in_text(text, record, ["name", "note", "tag"]) == (
        'got {"name": "***", "note": "***", "tag": "x"} and ***'
    )


def test_mask_fields_in_text_without_fields_still_masks_text() -> None:
    assert mask_fields_in_text("from a@b.com", {"name": "x y"}, []) == "from <email>"
    assert mask_fields_in_text("plain", None, ["name"]) == "plain"


# --- logging ---------------------------------------------------------------------------------


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("maas_ray.tests.masking")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_masking_filter_masks_formatted_message_and_traceback(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = capture
    handler.addFilter(MaskingFilter())
    logger.info("user %s paid with %s (%d%%)", "john@example.com", "4111 1111 1111 1111", 100)
    try:
        raise ValueError("cannot score 13800138000")
    except ValueError:
        logger.exception("prediction failed for %s", "jane@example.org")
    out = stream.getvalue()
    assert "INFO user <email> paid with <card> (100%)" in out
    assert "ERROR prediction failed for <email>" in out
    assert "ValueError: cannot score <phone>" in out
    for secret in ("john@", "jane@", "4111", "13800138000"):
        assert secret not in out


def test_install_log_masking_covers_root_and_serve_handlers_once(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream, handler = capture
    serve_stream = io.StringIO()
    serve_handler = logging.StreamHandler(serve_stream)
    serve_logger = logging.getLogger("ray.serve")
    # Only our handlers: pytest's own (session-wide) handlers on the root stay unfiltered.
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    monkeypatch.setattr(serve_logger, "handlers", [serve_handler])
    monkeypatch.setattr(serve_logger, "propagate", False)
    monkeypatch.setattr(serve_logger, "disabled", False)
    monkeypatch.setattr(serve_logger, "level", logging.INFO)
    logger.propagate = True
    logger.removeHandler(handler)  # records now reach the handler through the root

    install_log_masking()
    install_log_masking()

    assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1
    assert sum(isinstance(f, MaskingFilter) for f in serve_handler.filters) == 1
    logger.warning("ssn %s", "123-45-6789")
    assert stream.getvalue() == "WARNING ssn <national-id>\n"
    serve_logger.info("replica got %s", "li.wei@example.com")
    assert serve_stream.getvalue() == "replica got <email>\n"


def test_install_log_masking_covers_named_loggers(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = capture
    install_log_masking([logger.name])
    logger.info("contact %s", "+44 20 7946 0958")
    assert stream.getvalue() == "INFO contact <phone>\n"


def test_replica_logging_sends_maas_info_records_to_the_replica_file_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model load (INFO) lands in the handler Serve gave ``ray.serve``, once, masked."""
    serve_stream = io.StringIO()
    serve_handler = logging.StreamHandler(serve_stream)
    serve_logger = logging.getLogger("ray.serve")
    ours = logging.getLogger("maas_ray")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(serve_logger, "handlers", [serve_handler])
    for attr in ("handlers", "propagate", "level"):
        monkeypatch.setattr(ours, attr, getattr(ours, attr))
    monkeypatch.setattr(ours, "handlers", [])
    monkeypatch.setattr(log_masking, "_in_replica", lambda: True)

    install_replica_logging()
    install_replica_logging()

    logging.getLogger("maas_ray.serving.runtime").info("loaded model %s for %s", "m", "a@b.cn")
    assert serve_stream.getvalue() == "loaded model m for <email>\n"
    assert ours.handlers == [serve_handler]


def test_replica_logging_outside_a_replica_leaves_the_loggers_alone() -> None:
    """Building a deployment class in a test or a CLI must not reroute its loggers."""
    before = list(logging.getLogger("maas_ray").handlers)
    install_replica_logging()
    assert logging.getLogger("maas_ray").handlers == before
    assert logging.getLogger("maas_ray").propagate
