//! Firm KPIs.
