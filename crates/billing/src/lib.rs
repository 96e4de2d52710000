//! Exact billing arithmetic: billable quantities, rate cards, rounding, taxes and invoice drafts.
