"""The probe's judgment of a handler's answer: what reads as an unknown order."""

from __future__ import annotations

from feedback_check.diagnosis.judgement import handler_accepted, unknown_order_reason
from feedback_check.probe.http import HttpResult, HttpStatus


def test_unknown_order_answers_are_recognised_and_a_wrong_path_is_not() -> None:
    def answer(body: bytes) -> HttpResult:
        return HttpResult(method="POST", url="https://shop.example/order/feedback", address="192.0.2.1",
                          status=HttpStatus.ANSWERED, verified=True, status_code=404, body=body)

    for body in (b"Order S1-7 not found", b"order not found", b"Ogone: No transaction found matching reference X.",
                 b"Order matching query does not exist.", b"Bestellung 17 wurde nicht gefunden",
                 b"Unknown order"):
        assert unknown_order_reason(answer(body), "S1-7"), body
    for body in (b"The requested URL /order/feedback was not found on this server.", b"<h1>404 Not Found</h1>",
                 b"", b"Invalid SHASIGN for order S1-7"):
        assert unknown_order_reason(answer(body), "S1-7") is None, body
    assert unknown_order_reason(answer(b"Kein Auftrag S1-7"), "S1-7")       # names the order sent
    # A crash page listing the POST data names the order too: the crash stays what it is.
    for body in (b"<h1>Fatal error: Uncaught PDOException</h1><pre>$_POST = [orderID => S1-7]</pre>",
                 b"Traceback (most recent call last):\n  File \"shop.py\"\nKeyError: 'S1-7'",
                 b"Whoops! ErrorException. Request data: orderID=S1-7 amount=12"):
        assert unknown_order_reason(answer(body), "S1-7") is None, body
    # ... unless it is a known unknown-order answer (Django's debug page for a missing order).
    assert unknown_order_reason(answer(b"Traceback ... Order.DoesNotExist: Order matching query does not exist. "
                                       b"orderID=S1-7"), "S1-7")


def test_handler_accepted_means_2xx_or_a_redirect_to_another_page() -> None:
    def answer(code: int, location: str = "") -> HttpResult:
        return HttpResult(method="POST", url="https://shop.example/pf", address="192.0.2.1",
                          status=HttpStatus.ANSWERED, verified=True, status_code=code,
                          headers=(("Location", location),) if location else ())

    assert handler_accepted(answer(200)) and handler_accepted(answer(204))
    assert handler_accepted(answer(303, "/payment/status"))
    assert not handler_accepted(answer(301, "https://shop.example/pf/"))     # the same resource: before any handler
    assert not handler_accepted(answer(302)) and not handler_accepted(answer(404)) and not handler_accepted(None)
