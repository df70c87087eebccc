"""The permissions staff pages and API calls declare, named in code: each name and what it lets
its holder do, in English (the pages show it in the reader's language).

A role is data (:mod:`cloud.staff.roles`: the ``roles`` table and its ``role_permissions``);
what a role may do is the set of these names its rows give it. A view says which one it needs
(``@permission("tickets.sell")`` on a page, ``@api_permission(...)`` on the JSON API), and a
new page of a later issue adds its name here first. Names that no view checks yet are here
because the roles of the seeds already hold them (finance, content, refund requests).
"""

from __future__ import annotations


def _l(text: str) -> str:
    """Marks a description for translation (the pages look it up in the catalogue); no Flask
    here: this is a rule module."""
    return text


# In the order the roles page lists them, grouped by area.
PERMISSIONS: dict[str, str] = {
    "venues.view": _l("See venues, their zones, gates and seat maps"),
    "venues.manage": _l("Create venues, zones and gates, edit gates, import seat maps"),
    "sessions.manage": _l("Create sessions and price tiers, confirm them and put them on sale"),
    "seats.manage": _l("Change the category of a session's seats and reserve seats"),
    "tickets.search": _l("Find tickets by number or document and open a ticket's page"),
    "tickets.sell": _l("Sell tickets at the box office, and see the code of a ticket just sold"),
    "tickets.refund": _l("Void and refund tickets"),
    "tickets.reveal": _l("Reveal a ticket's holder and code in full, with a reason (audited)"),
    "orders.request_refund": _l("Ask for a refund, for a supervisor to approve"),
    "orders.approve_refund": _l("Approve what a clerk may not do alone: refund requests "
                                "(never one's own) and refunds of tickets that have admitted "
                                "someone"),
    "finance.view": _l("See sales and payment figures and settlements"),
    # the ledger (issue 19)
    "finance.manage": _l("Manage partners, their portal users and split rules, run "
                         "settlements and cancel statements, import providers' statements "
                         "and resolve reconciliation exceptions"),
    "finance.pay": _l("Mark a settlement statement paid (never one's own)"),
    "content.manage": _l("Edit what the public sales pages show about events"),
    "appliances.view": _l("See the appliances, their state and last report"),
    "appliances.manage": _l("Register, rename, command and revoke appliances; export signed "
                            "allowlists"),
    "attendance.view": _l("See the operations dashboard: attendance, entry rates, appliances "
                          "and devices, and its CSV exports"),
    "alerts.manage": _l("See alerts and set their rules"),
    "displays.manage": _l("Make and revoke wall display links"),
    "conflicts.resolve": _l("See and review conflicts among reported entries"),
    "keys.manage": _l("Create, activate and retire ticket-signing keys"),
    "staff.manage": _l("Run staff accounts: create, disable, change roles, reset passwords, "
                       "second steps and API tokens; see the roles"),
    "audit.view": _l("Read and export the audit log"),
    # identity (issue 16 §2)
    "buyers.review_identity": _l("Review the document photos of buyers whose documents no "
                                 "service checks, and approve or refuse them (audited)"),
    # buyers (accounts)
    "buyers.view": _l("See buyers' accounts, masked, and find one by mobile number"),
    # messaging (issue 16)
    "messages.manage": _l("See the outbox and resend failed messages, edit message templates, "
                          "and send messages to lists of recipients"),
    # flags (issue 16 §4)
    "buyers.flag": _l("Flag holders and buyers: keep them from buying, from refunds or from "
                      "entry, and lift flags"),
    # content (issue 17 §3)
    "content.publish": _l("Publish, send back and withdraw the content others wrote (never "
                          "one's own)"),
    # presale lottery (issue 18)
    "presale.manage": _l("Set up presales and open them, freeze their applications, start the "
                         "refunds of those not drawn and assign the winners' seats"),
    "presale.draw": _l("Enter a presale's seed (one of two people) and run its draw or import "
                       "the result of a notarised draw"),
    # channels and distribution (issue 20)
    "channels.manage": _l("Run sales channels and their quotas, booths, contract customers, "
                          "partners' products, agreed prices, sales codes and API keys"),
}
