//! An email as the outbox keeps it: built once by `mail`, stored by `store`.

/// One email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// The `Message-ID` header, without angle brackets: the same on every
    /// retry of one message, so receiving servers can drop a duplicate.
    pub message_id: String,
}
