"""The catalogue of signing mistakes: one home for what `verify` (doctor) and the probe (variants) both know.

Each classic integration mistake is one knob of the platform's recipe turned (feedback_check.signature.doctor
builds the strings); this module says which mistake a turned knob is (`mistake_code`), its stable code,
title and generic fix (`MISTAKES`, which `explain` reads too), and the back-office places and profile key
the fixes point to. The doctor words a mistake for someone checking a SHASIGN, the variants for someone
changing a handler; both start from here.
"""

from __future__ import annotations

BACK_OFFICE_SECURITY = "Configuration > Technical information > Global security parameters"
BACK_OFFICE_FEEDBACK = "Configuration > Technical information > Transaction feedback"
#: Where the current SHA-OUT list lives (the list a handler should copy).
CURRENT_LIST_SOURCE = "platform profile: signature.sha_out_parameters"
#: A knob the doctor does not search (it compares digests without regard to case), which the probe's
#: variants turn: a handler comparing its own lower-case hex digest with the platform's upper-case SHASIGN.
DIGEST_CASE = "digest_case"

#: Every mistake the doctor can name: code -> (title, generic fix). `explain` reads it too.
MISTAKES: dict[str, tuple[str, str]] = {
    "signature.mistake.algorithm": (
        "Hash algorithm differs from the account's",
        "Use the same algorithm on both sides: the account's Global security parameters and your code."),
    "signature.mistake.test_passphrase": (
        "The other environment's passphrase (TEST instead of PROD, or the reverse) was used",
        "Configure each environment with its own account's passphrase; check which one production loads."),
    "signature.mistake.encoding": (
        "Character encoding differs from the account's",
        ("Encode the string in the account's character encoding before hashing, and make the back office "
        "and the code agree (UTF-8 is recommended).")),
    "signature.mistake.mixed_encodings": (
        "Passphrase and values hashed in different encodings",
        ("Hash the whole string in the account's encoding: the passphrase too (a passphrase written in a "
         "UTF-8 file becomes other bytes than the account's ISO-8859-1), or use an ASCII passphrase.")),
    "signature.mistake.utf8_decoding_handler": (
        "Handler decodes the request as UTF-8 while the account sends ISO-8859-1",
        (f"Set the account's character encoding to UTF-8 ({BACK_OFFICE_SECURITY}): frameworks such as werkzeug "
         "(Odoo) and Django decode every request as UTF-8.")),
    "signature.mistake.digest_case": (
        "Digest compared with regard to letter case",
        ("Compare the SHASIGN without regard to case: the platform sends upper-case hex, PHP's sha1()/hash() "
         "return lower case (the probe recognises this; a captured SHASIGN shows it as a note).")),
    "signature.mistake.outdated_list": (
        "Outdated SHA-OUT parameter list",
        f"Replace the list in your code with the current SHA-OUT list ({CURRENT_LIST_SOURCE})."),
    "signature.mistake.every_parameter": (
        "Every parameter hashed, not only those on the SHA-OUT list",
        "Keep only names on the SHA-OUT list before building the string."),
    "signature.mistake.shasign_hashed": (
        "SHASIGN itself hashed",
        "Remove SHASIGN from the parameters before building the string."),
    "signature.mistake.sha_out_list_for_sha_in": (
        "SHA-OUT list used for a payment request",
        "Hash every non-empty parameter of the payment request (SHA-IN), not only the SHA-OUT names."),
    "signature.mistake.legacy_concatenation": (
        "Legacy value concatenation (old Ogone SHA-1 rule)",
        ("Use the current rule: every signed parameter as NAME=value followed by the passphrase, names "
        "upper-cased and sorted, empty values left out.")),
    "signature.mistake.parameter_left_out": (
        "A signed parameter left out of the hash",
        "Hash every received parameter that is signed, not a fixed selection."),
    "signature.mistake.names_not_uppercased": (
        "Parameter names not upper-cased",
        "Upper-case each name: f\"{name.upper()}={value}\"."),
    "signature.mistake.case_sensitive_sort": (
        "Sorted by the names as received (case-sensitive)",
        "Sort by the upper-cased name: sorted(params.items(), key=lambda kv: kv[0].upper())."),
    "signature.mistake.not_sorted": (
        "Parameters not sorted",
        "Sort by upper-cased name before concatenating."),
    "signature.mistake.empty_values_hashed": (
        "Empty values included",
        "Skip parameters whose value is the empty string."),
    "signature.mistake.passphrase_once": (
        "Passphrase appended only once, at the end",
        ("Build the string as ''.join(f'{NAME}={value}{passphrase}' for each pair): the passphrase follows "
        "every pair, the last one included.")),
    "signature.mistake.url_encoded_values": (
        "URL-encoded values hashed",
        ("Hash the decoded values (what your framework's request parameters give you), never the raw query "
        "string or body.")),
    "signature.mistake.passphrase_whitespace": (
        "Whitespace around the passphrase",
        ("Trim the passphrase when loading it (.strip()), and make sure the back office value has no "
        "surrounding spaces either.")),
}

#: Which mistake a knob turned to a value is: (knob, value) -> code. The value None stands for every
#: other value of that knob; "variant:" and "omit:" for every selection of that family.
MISTAKE_OF_KNOB: dict[tuple[str, str | None], str] = {
    ("algorithm", None): "signature.mistake.algorithm",
    ("secret", None): "signature.mistake.test_passphrase",
    ("encoding", None): "signature.mistake.encoding",
    ("passphrase_encoding", None): "signature.mistake.mixed_encodings",
    ("selection", "variant:"): "signature.mistake.outdated_list",
    ("selection", "all"): "signature.mistake.every_parameter",
    ("selection", "all_with_shasign"): "signature.mistake.shasign_hashed",
    ("selection", "list_for_sha_in"): "signature.mistake.sha_out_list_for_sha_in",
    ("selection", "legacy"): "signature.mistake.legacy_concatenation",
    ("selection", "omit:"): "signature.mistake.parameter_left_out",
    ("names", None): "signature.mistake.names_not_uppercased",
    ("order", "case_sensitive"): "signature.mistake.case_sensitive_sort",
    ("order", None): "signature.mistake.not_sorted",
    ("empty", None): "signature.mistake.empty_values_hashed",
    ("placement", None): "signature.mistake.passphrase_once",
    ("values", "utf8_decoded"): "signature.mistake.utf8_decoding_handler",
    ("values", None): "signature.mistake.url_encoded_values",
    ("passphrase", None): "signature.mistake.passphrase_whitespace",
    (DIGEST_CASE, None): "signature.mistake.digest_case",
}


def mistake_code(knob: str, value: str) -> str:
    """The catalogued mistake (signature.mistake.*) that turning `knob` to `value` is.
    Raises ValueError for a knob value the catalogue does not know."""
    family = value.split(":", 1)[0] + ":" if ":" in value else value
    code = MISTAKE_OF_KNOB.get((knob, family)) or MISTAKE_OF_KNOB.get((knob, None))
    if code is None:
        raise ValueError(f"no catalogued mistake for {knob}={value!r}")
    return code
