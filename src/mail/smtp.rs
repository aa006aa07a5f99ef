//! Delivery over SMTP with lettre.

use std::time::Duration;

use async_trait::async_trait;
use clap::ValueEnum;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};

use super::{EmailMessage, MailError, Mailer};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on localhost or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where and how to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `From:`, e.g. `Developer Portal <no-reply@example.com>`.
    pub from: String,
}

/// Sends through one SMTP server, reusing connections.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|err| format!("invalid sender address {:?}: {err}", settings.from))?;
        let builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|err| format!("SMTP STARTTLS setup failed: {err}"))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|err| format!("SMTP TLS setup failed: {err}"))?,
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: EmailMessage) -> Result<(), MailError> {
        let to: Mailbox = message.to.parse().map_err(|err| MailError {
            message: format!("invalid recipient: {err}"),
            permanent: true,
        })?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .message_id(Some(format!("<{}>", message.message_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body)
            .map_err(|err| MailError {
                message: format!("cannot build the message: {err}"),
                permanent: true,
            })?;
        let ascii_recipient = message.to.is_ascii();
        self.transport
            .send(email)
            .await
            .map(drop)
            .map_err(|err| MailError {
                // lettre refuses a non-ASCII address itself, as a client
                // error, when the server lacks SMTPUTF8: that server will
                // never take it, so retrying is pointless. (Other client
                // errors, such as a TLS or login problem, are the server's
                // configuration and worth retrying.)
                permanent: err.is_permanent()
                    || (err.is_client()
                        && !ascii_recipient
                        && err.to_string().contains("SMTPUTF8")),
                message: err.to_string(),
            })
    }
}
