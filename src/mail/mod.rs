//! Invitation emails: the message, the outbox, and delivery.
//!
//! The message is built here once and written to the outbox in the
//! transaction that creates (or resends) the invitation; the
//! [`dispatcher`] delivers outbox rows through a [`Mailer`] with retries.
//! Mailers: [`smtp::SmtpMailer`] (lettre), [`LogMailer`] (development:
//! writes the message to the log) and [`MemoryMailer`] (keeps messages in
//! memory, for embedding roster in tests of other systems).

pub mod dispatcher;
pub mod smtp;

use std::sync::Mutex;

use async_trait::async_trait;
use tracing::info;

use crate::domain::model::{Invitation, Role};

pub use crate::domain::email::EmailMessage;

/// Why a message could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {message}")]
pub struct MailError {
    pub message: String,
    /// The server refused the message for good (e.g. no such mailbox):
    /// retrying cannot help.
    pub permanent: bool,
}

impl MailError {
    /// A failure worth retrying later (server down, timeout, 4xx).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }
}

/// Delivers emails.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: EmailMessage) -> Result<(), MailError>;
}

/// Development mailer: logs each message instead of sending it.
#[derive(Debug, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, message: EmailMessage) -> Result<(), MailError> {
        // Addresses never reach the logs in full: not the recipient's, and
        // not the inviter's, which the subject and body may name.
        info!(
            to = %mask_email(&message.to),
            message_id = %message.message_id,
            subject = %mask_emails_in(&message.subject),
            body = %mask_emails_in(&message.body),
            "email not sent (development mailer); it would read"
        );
        Ok(())
    }
}

/// Keeps every message in memory.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<EmailMessage>>,
}

impl MemoryMailer {
    /// Every message sent so far, oldest first.
    pub fn sent(&self) -> Vec<EmailMessage> {
        self.sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, message: EmailMessage) -> Result<(), MailError> {
        self.sent
            .lock()
            .map_err(|_| MailError::transient("mailbox poisoned"))?
            .push(message);
        Ok(())
    }
}

/// `a***@example.com`: enough to recognise in a log, not enough to harvest.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every address in it masked as [`mask_email`] does.
pub fn mask_emails_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_email(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || "()<>,;\"'".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The invitation email: who invites whom to what, as which role, until when,
/// and the link — with a word for people who have no portal account yet.
pub fn invitation_email(
    invitation: &Invitation,
    organization_name: &str,
    inviter: &str,
    link: &str,
) -> EmailMessage {
    let role = match invitation.role {
        Role::Owner => "an owner",
        Role::Admin => "an admin",
        Role::Member => "a member",
    };
    let expires = invitation.expires_at.format("%Y-%m-%d %H:%M UTC");
    let body = format!(
        "Hello,\n\n\
         {inviter} has invited you to join {organization_name} as {role} on the developer portal.\n\n\
         Open this link to accept or decline the invitation:\n\
         {link}\n\n\
         The invitation expires on {expires}.\n\n\
         If you do not have a portal account yet, register first with this email address \
         ({email}), then open the link again to accept.\n\n\
         If you did not expect this invitation, you can ignore this email.\n",
        email = invitation.email,
    );
    EmailMessage {
        to: invitation.email.clone(),
        subject: format!("{inviter} invited you to join {organization_name}"),
        body,
        message_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{
        ids::{InvitationId, OrganizationId, UserId},
        model::{InvitationDelivery, InvitationState},
    };

    #[test]
    fn the_invitation_email_says_everything_the_invitee_needs() {
        let expires_at = Utc
            .with_ymd_and_hms(2026, 12, 6, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let invitation = Invitation {
            id: InvitationId::new(),
            organization_id: OrganizationId::new(),
            organization_name: "Acme".into(),
            organization_slug: "acme".into(),
            email: "Bob@Example.com".into(),
            role: Role::Admin,
            stored_state: InvitationState::Pending,
            inviter_id: UserId::from_trusted("alice".into()),
            expires_at,
            created_at: expires_at,
            updated_at: expires_at,
            delivery: InvitationDelivery::Email,
            source_id: None,
            link: None,
        };
        let link = format!(
            "https://portal.example.com/auth/accept-invitation?invitationId={}",
            invitation.id
        );
        let message = invitation_email(&invitation, "Acme", "Alice", &link);
        assert_eq!(message.to, "Bob@Example.com");
        assert_eq!(message.subject, "Alice invited you to join Acme");
        for needle in [
            link.as_str(),
            "as an admin",
            "Alice",
            "2026-12-06 12:00 UTC",
            "register first",
        ] {
            assert!(
                message.body.contains(needle),
                "missing {needle:?} in {}",
                message.body
            );
        }
    }

    #[test]
    fn emails_are_masked_in_logs() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        assert_eq!(
            mask_emails_in("alice@example.com invited you (bob@example.com)."),
            "a***@example.com invited you (b***@example.com)."
        );
    }
}
