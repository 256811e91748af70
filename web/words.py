"""Words that reach pages from elsewhere (states, answers, services' messages), marked
for the catalogs; pages translate them with the ``translate`` filter."""

from __future__ import annotations


def N_(text: str) -> str:
    return text


STATES = [N_("confirmed"), N_("requested"), N_("cancelled"), N_("declined"), N_("expired")]
ANSWERS = [N_("accepted"), N_("needs-action"), N_("tentative"), N_("delegated")]
BUSY_KINDS = [N_("booking"), N_("external"), N_("hold"), N_("related")]
LINK_PROBLEMS = [
    N_("This link has expired."),
    N_("This link has already been used."),
    N_("This link is not valid."),
    N_("This link is not valid. It may have been mistyped."),
    N_("This link is for something else."),
    N_("This link is not for a proposed time."),
    N_("This link no longer points at a booking."),
    N_("This is not a reschedule link."),
    N_("This is not an approval link."),
    N_("This is not a decline link."),
    N_("This booking is cancelled."),
    N_("This booking is declined."),
    N_("This proposed time is approved."),
    N_("This proposed time is declined."),
    N_("This proposed time is superseded."),
    N_("This proposed time is expired."),
]
PAGE_MESSAGES = [
    N_("Form expired"),
    N_(
        "This form could not be verified (it may be old, or come from another site). "
        "Go back, reload the page and try again."
    ),
    N_("Not found"),
    N_("There is nothing of yours here."),
    N_("Please wait"),
    N_("Enter an email address, like name@example.org."),
    N_("Approved: both of you get a calendar invitation."),
    N_("Declined: the time is free again."),
    N_("Cancelled: both of you are told."),
    N_("The new time is applied."),
    N_("The proposal is declined; the booking keeps its time."),
    N_("pick one of the listed times"),
    N_("enter a date and a time"),
    N_("that local time does not exist (clocks change then)"),
    N_("the host could not confirm it"),
]
# Cancel reasons Parley itself writes (a person's own words stay as they wrote them).
REASONS = [
    N_("declined by the guest"),
    N_("declined by the host"),
    N_("cancelled by the provider"),
    N_("cancelled by the guest"),
    N_("cancelled by the host"),
]
