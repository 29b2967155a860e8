"""Protocol profiles: which code points a deployment speaks.

The seed draft never received IANA numbers for its Binding Cache Confirmation
and Assigned Home Address options, and two of its status codes collide with
values RFC 3963 had already assigned (WIRE.md, "The seed's own code points").
A profile pins those choices in one object that the codec and the engines share.
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
