"""Protocol profiles: which code points a deployment speaks.

The seed draft never received IANA numbers for its Binding Cache Confirmation
option (seed 4.3) and its Assigned Home Address option (seed 6.1, reference
[10]), and its two status codes (seed 5.1) collide with values RFC 3963 4.2 had
already assigned: 140 "Proxy Registration not supported" is IANA's "Mobile
Router Operation not permitted", 141 "Binding Cache Entry missing" is IANA's
"Invalid Prefix". The ``draft-00`` profile keeps the seed's 140 and 141, puts
the Binding Cache Confirmation at option type 200 (unassigned) and the Assigned
Home Address at 22, whose layout it shares with RFC 5213's Home Network Prefix;
``rfc5213`` has neither option and says 152 (RFC 5213 8.9) where the seed says
140. A profile pins those choices in one object that the codec and the engines
share.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # option type of the seed's Binding Cache Confirmation option (seed 4.3);
    # None where the profile has no such option
    bcc_option_type: int | None
    # option type of the Assigned Home Address option (LoA + prefix length),
    # laid out as RFC 5213's Home Network Prefix option
    aha_option_type: int | None
    # BA status "Proxy Registration not supported" (seed 5.1)
    status_proxy_reg_not_supported: int
    # BA status "Binding Cache Entry missing" (seed 5.1); None in rfc5213
    status_bce_missing: int | None


DRAFT00 = Profile(
    name="draft-00",
    bcc_option_type=200,
    aha_option_type=22,
    status_proxy_reg_not_supported=140,
    status_bce_missing=141,
)

RFC5213 = Profile(
    name="rfc5213",
    bcc_option_type=None,
    aha_option_type=None,
    status_proxy_reg_not_supported=152,
    status_bce_missing=None,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (DRAFT00, RFC5213)}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(
            f"unknown protocol profile {name!r} (known: {known})"
        ) from None
