//! Invitation links: where the portal opens an invitation.
//!
//! A deployment names the page with a URL template holding `{id}` exactly
//! once (the Developer Portal's accept page is
//! `https://<portal>/auth/accept-invitation?invitationId={id}`); the
//! invitation email and the `link` of an invitation are that template with
//! the invitation's id in place.

use url::Url;

use super::ids::InvitationId;

/// A checked invitation link template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationLinks {
    /// The normalised template, split around the placeholder.
    before: String,
    after: String,
}

impl InvitationLinks {
    pub const PLACEHOLDER: &str = "{id}";

    /// Checks `template`: an http(s) URL with a host, no credentials, and
    /// `{id}` exactly once, outside the host. The error is the rule broken,
    /// as a phrase to follow the setting's name.
    pub fn parse(template: &str) -> Result<Self, String> {
        let count = template.matches(Self::PLACEHOLDER).count();
        if count != 1 {
            return Err(format!(
                "must contain {} exactly once (it contains it {count} times)",
                Self::PLACEHOLDER
            ));
        }
        if template
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err("must not contain spaces or control characters".to_owned());
        }
        // A stand-in id that survives normalisation unchanged, to find the
        // placeholder's place in the normalised URL.
        let sample = InvitationId::new().to_string();
        let url = Url::parse(&template.replace(Self::PLACEHOLDER, &sample))
            .map_err(|err| format!("is not a URL ({err})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must be an http(s) URL, not {}:", url.scheme()));
        }
        if url
            .host_str()
            .is_none_or(|host| host.is_empty() || host.contains(&sample))
        {
            return Err(format!(
                "must name a host, and put {} in the path or query",
                Self::PLACEHOLDER
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".to_owned());
        }
        let normalised = url.as_str();
        let (before, after) = normalised
            .split_once(&sample)
            .ok_or_else(|| format!("is not a URL {} can be put into", Self::PLACEHOLDER))?;
        Ok(Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// Today's link, `<portal-url>/invitations/{id}`, the default.
    pub fn under_portal(portal_url: &str) -> Result<Self, String> {
        Self::parse(&format!(
            "{}/invitations/{}",
            portal_url.trim_end_matches('/'),
            Self::PLACEHOLDER
        ))
    }

    /// The link that opens `id`.
    pub fn link(&self, id: InvitationId) -> String {
        format!("{}{id}{}", self.before, self.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_put_the_id_in_place() {
        let links = InvitationLinks::parse(
            "https://Portal.example.com/auth/accept-invitation?invitationId={id}",
        )
        .unwrap();
        let id = InvitationId::new();
        assert_eq!(
            links.link(id),
            format!("https://portal.example.com/auth/accept-invitation?invitationId={id}")
        );
        let default = InvitationLinks::under_portal("http://localhost:3000/").unwrap();
        assert_eq!(
            default.link(id),
            format!("http://localhost:3000/invitations/{id}")
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "https://portal.example.com/invitations",
            "https://portal.example.com/{id}/{id}",
            "ftp://portal.example.com/{id}",
            "portal.example.com/{id}",
            "https://{id}.example.com/",
            "https://user:pw@portal.example.com/{id}",
            "https://portal.example.com/ {id}",
        ] {
            assert!(InvitationLinks::parse(bad).is_err(), "{bad}");
        }
    }
}
