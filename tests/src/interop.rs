//! Helpers for the interop tests of the ledger (oras, regctl, crane, the
//! independent DSSE verifier).
