//! Approval policies: the file format, routing by decision table, segregation of duties.
