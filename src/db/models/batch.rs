//! Issuance batches (発券指示): their states.

super::text_enum! {
    /// A batch's state (`issuance_batches.state`).
    BatchState {
        /// Ordered by the office; no run has started.
        Ordered = "ordered",
        /// A run has started (and may have been interrupted: a rerun resumes it).
        Running = "running",
        /// Every card written.
        Completed = "completed",
    }
}
