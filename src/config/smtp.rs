//! Where invitation emails go: an SMTP server, or (without one) the log.

use std::sync::Arc;

use clap::Args;

use super::{ConfigError, defaults};
use crate::mail::{
    LogMailer, Mailer,
    smtp::{SmtpMailer, SmtpSettings, SmtpTls},
};

/// SMTP delivery of invitation emails. Without a host, emails are written
/// to the log instead (development).
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct SmtpConfig {
    /// SMTP server host name; unset means "log emails instead of sending".
    #[arg(long, env = "ROSTER_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP server port.
    #[arg(long, env = "ROSTER_SMTP_PORT", default_value_t = defaults::SMTP_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub smtp_port: u16,
    /// `none` (plain, local relays only), `starttls` or `tls`.
    #[arg(long, env = "ROSTER_SMTP_TLS", value_enum, default_value_t = SmtpTls::Starttls)]
    pub smtp_tls: SmtpTls,
    /// SMTP user name, if the server wants one.
    #[arg(long, env = "ROSTER_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long, env = "ROSTER_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// The sender, e.g. `Developer Portal <no-reply@example.com>`.
    #[arg(long, env = "ROSTER_SMTP_FROM", default_value = defaults::SMTP_FROM)]
    pub smtp_from: String,
}

impl SmtpConfig {
    /// The SMTP settings, if SMTP is configured.
    fn settings(&self) -> Option<SmtpSettings> {
        self.smtp_host.as_ref().map(|host| SmtpSettings {
            host: host.clone(),
            port: self.smtp_port,
            tls: self.smtp_tls,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            from: self.smtp_from.clone(),
        })
    }

    /// The mailer this configuration asks for.
    pub(super) fn mailer(&self) -> Result<Arc<dyn Mailer>, ConfigError> {
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            return Err(ConfigError(
                "set both ROSTER_SMTP_USERNAME and ROSTER_SMTP_PASSWORD, or neither".into(),
            ));
        }
        match self.settings() {
            Some(settings) => Ok(Arc::new(SmtpMailer::new(&settings).map_err(ConfigError)?)),
            None => Ok(Arc::new(LogMailer)),
        }
    }
}
