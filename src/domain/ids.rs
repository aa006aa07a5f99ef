//! Typed identifiers, so an organization id cannot be passed where an
//! invitation id is expected. Resource ids are UUIDv7: unique and ordered by
//! creation time, which keyset pagination relies on. Developer ids follow
//! the Provider Portal's rule instead, since they may come from elsewhere.

use std::fmt;

use uuid::Uuid;

use super::FieldViolation;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the id given in request field `field`.
            pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
                parse_uuid(field, value).map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An organization's id.
    OrganizationId
);
uuid_id!(
    /// A membership's id.
    MembershipId
);
uuid_id!(
    /// An invitation's id.
    InvitationId
);

fn parse_uuid(field: &str, value: &str) -> Result<Uuid, FieldViolation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| FieldViolation::new(field, "must be a UUID"))
}

/// Parses an optional `request_id`: empty means none, anything else must be a UUID.
pub fn parse_request_id(field: &str, value: &str) -> Result<Option<Uuid>, FieldViolation> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        parse_uuid(field, value).map(Some)
    }
}

/// Longest developer id the Provider Portal accepts.
pub const MAX_DEVELOPER_ID_LEN: usize = 256;

/// The stable id of an organization's developer identity in the Provider
/// Portal: any id the Provider Portal accepts (`^[a-zA-Z0-9-_.]{1,256}$`),
/// since organizations brought over from another portal keep theirs.
/// roster mints UUIDv7 strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeveloperId(String);

impl DeveloperId {
    /// A fresh id: a UUIDv7 in its canonical text form.
    pub fn new() -> Self {
        Self(Uuid::now_v7().to_string())
    }

    /// Parses a developer id from field `field`, by the Provider Portal's rule.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        check_portal_id(field, value)?;
        Ok(Self(value.to_owned()))
    }

    /// For ids read back from our own database, which checks the same rule.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for DeveloperId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DeveloperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Provider Portal's rule for ids (`^[a-zA-Z0-9-_.]{1,256}$`), which
/// also fits the ids of the portals roster imports from: safe in a URL path
/// as they are.
fn check_portal_id(field: &str, value: &str) -> Result<(), FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.len() > MAX_DEVELOPER_ID_LEN {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_DEVELOPER_ID_LEN} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldViolation::new(
            field,
            "may contain only a-z, A-Z, 0-9, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// How a request names an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationRef {
    /// roster's own id.
    Id(InvitationId),
    /// The id an imported invitation had where it came from (Better Auth's,
    /// which the link in its email names). Never a UUID: an imported UUID
    /// is kept as roster's id.
    Source(String),
}

impl InvitationRef {
    /// Parses the invitation named in request field `field`: a UUID, or an
    /// imported invitation's former id.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if let Ok(id) = Uuid::parse_str(trimmed) {
            return Ok(Self::Id(InvitationId(id)));
        }
        check_source_id(value).map_err(|_| {
            FieldViolation::new(
                field,
                "must be a UUID, or the id an imported invitation had before \
                 (up to 256 of a-z, A-Z, 0-9, '-', '_' and '.')",
            )
        })?;
        Ok(Self::Source(value.to_owned()))
    }
}

/// Whether `value` may be kept as an imported row's former id (the import
/// checks Better Auth's ids with it).
pub fn check_source_id(value: &str) -> Result<(), FieldViolation> {
    check_portal_id("id", value)
}

/// Longest user id we store (the `sub` claim of the caller's token).
pub const MAX_USER_ID_LEN: usize = 255;

/// A user of the portal: the `sub` claim of their token. roster does not
/// mint user ids; the portal's identity provider does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Parses a user id from request field (or claim) `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        if value.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if value.chars().count() > MAX_USER_ID_LEN {
            return Err(FieldViolation::new(
                field,
                format!("must be at most {MAX_USER_ID_LEN} characters"),
            ));
        }
        if value.chars().any(char::is_control) || value.trim() != value {
            return Err(FieldViolation::new(
                field,
                "must not contain control characters or surrounding spaces",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// For ids read back from our own database, which were parsed on the way in.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developer_ids_follow_the_provider_portals_rule() {
        let minted = DeveloperId::new();
        assert_eq!(DeveloperId::parse("d", minted.as_str()), Ok(minted));
        for good in ["a", "Abc-_.9", "yTq3bWj0sXx1HcP2aM9kQ", &"x".repeat(256)] {
            assert!(DeveloperId::parse("d", good).is_ok(), "{good}");
        }
        for bad in ["", " a", "a b", "a/b", "é", "a\0", &"x".repeat(257)] {
            assert!(DeveloperId::parse("d", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invitations_are_named_by_uuid_or_by_an_imported_id() {
        let id = InvitationId::new();
        let parsed = InvitationRef::parse("id", &format!(" {id} "));
        assert_eq!(parsed, Ok(InvitationRef::Id(id)));
        for source in ["yTq3bWj0sXx1HcP2aM9kQ", "42", "a.b-c_d", &"x".repeat(256)] {
            assert_eq!(
                InvitationRef::parse("id", source),
                Ok(InvitationRef::Source(source.to_owned())),
                "{source}"
            );
        }
        for bad in [
            "",
            "  ",
            " a",
            "a b",
            "a/b",
            "../x",
            "é",
            "a\0",
            &"x".repeat(257),
        ] {
            assert!(InvitationRef::parse("id", bad).is_err(), "{bad:?}");
        }
    }
}
