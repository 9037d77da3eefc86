//! The mail queue: the states of a queued notice.

super::text_enum! {
    /// A queued notice's state (`mail_queue.state`).
    MailState {
        /// Waiting to be sent (or to be retried after its back-off).
        Pending = "pending",
        /// Accepted by the SMTP server.
        Sent = "sent",
    }
}
