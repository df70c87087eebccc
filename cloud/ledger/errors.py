"""The ledger's refusals: each a code with its status and English words
(cloud/core/errors.py); ``field`` names the part of the request at fault."""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class LedgerError(HubError):
    """An entry, rule, settlement, reconciliation or partner the ledger refuses."""

    codes = {
        "unbalanced_entry": Code(422, "entry %(key)s does not balance: its postings sum to "
                                      "%(total)s"),
        "malformed_entry": Code(422, "entry %(key)s: %(detail)s"),
        "unknown_account": Code(404, "no ledger account %(account)s"),
        "insufficient_funds": Code(409, "account %(account)s has %(available)s available: "
                                        "%(wanted)s cannot be taken from it"),
        "entry_not_pending": Code(409, "entry %(key)s is %(state)s: only a pending entry is "
                                       "posted or voided"),
        "unknown_entry": Code(404, "no ledger entry %(key)s"),
        "bad_ledger_request": Code(422, "%(field)s is missing or not valid"),
        "unknown_partner": Code(404, "no partner %(partner_id)s"),
        "partner_code_taken": Code(409, "a partner has the code %(code)s already"),
        "unknown_rule": Code(404, "no split rule %(rule_id)s"),
        "unknown_statement": Code(404, "no settlement statement %(statement_id)s"),
        "statement_state": Code(409, "statement %(statement_id)s is %(state)s"),
        "same_person": Code(409, "%(actor)s prepared this: another person with the pay "
                                 "permission marks it paid"),
        "unknown_exception": Code(404, "no reconciliation exception %(exception_id)s"),
        "exception_resolved": Code(409, "exception %(exception_id)s is %(state)s already"),
        "portal_username_taken": Code(409, "the user name %(username)s is taken"),
    }
