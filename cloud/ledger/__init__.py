"""The ledger (issue 19): an append-only double-entry journal in integer minor units, written
in the transaction of the payment, refund, payout or adjustment that causes it; the split of
each payment among the partners by agreed rules; settlement runs and partners' statements;
reconciliation with the providers' daily statements and the ticket library; the finance pages
and the partners' own portal."""
