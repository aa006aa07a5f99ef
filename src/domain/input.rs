//! Request values that have passed roster's input rules (each type's
//! `parse` is the one place its rule is written).
//!
//! Each type can only be built through `parse`, which names the field and the
//! rule it broke, so a value of one of these types is valid by construction
//! (zero2prod's `SubscriberName::parse`).

use std::fmt;

use email_address::{EmailAddress, Options};

use super::FieldViolation;

/// An organization's display name: 1-100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldViolation::new(field, "is required (1-100 characters)"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new(
                field,
                "must be at most 100 characters after trimming",
            ));
        }
        no_control_characters(field, trimmed)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses control characters (NUL above all: PostgreSQL cannot store it in
/// text, SQLite would): the one rule every free-text input shares, so a
/// text that reaches the database is the same valid text on both.
pub fn no_control_characters(field: &str, value: &str) -> Result<(), FieldViolation> {
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Slugs that would collide with the portal's own routes.
pub const RESERVED_SLUGS: &[&str] = &[
    "about",
    "account",
    "accounts",
    "admin",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "dashboard",
    "docs",
    "help",
    "invitations",
    "invite",
    "login",
    "logout",
    "me",
    "new",
    "null",
    "org",
    "orgs",
    "organizations",
    "portal",
    "register",
    "root",
    "settings",
    "signin",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "undefined",
    "www",
];

/// Why a string cannot be a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlugProblem {
    /// It breaks the syntax rule (the text says which part).
    Invalid(String),
    /// It is on the reserved list.
    Reserved,
}

/// A URL slug: 3-48 of `a-z`, `0-9`, `-`, starting and ending with a letter
/// or digit, no `--`, not reserved. Input is trimmed and folded to lower case,
/// so `Acme` and `acme` are the same slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 48;

    /// The stored form of `value`: trimmed, lower case.
    pub fn normalize(value: &str) -> String {
        value.trim().to_lowercase()
    }

    /// Parses `value`, telling apart a malformed slug from a reserved one.
    pub fn check(value: &str) -> Result<Self, SlugProblem> {
        let slug = Self::normalize(value);
        let len = slug.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(SlugProblem::Invalid(
                "must be 3-48 characters long".to_owned(),
            ));
        }
        if !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(SlugProblem::Invalid(
                "may contain only a-z, 0-9 and '-'".to_owned(),
            ));
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err(SlugProblem::Invalid(
                "must start and end with a letter or digit".to_owned(),
            ));
        }
        if slug.contains("--") {
            return Err(SlugProblem::Invalid("must not contain '--'".to_owned()));
        }
        if RESERVED_SLUGS.contains(&slug.as_str()) {
            return Err(SlugProblem::Reserved);
        }
        Ok(Self(slug))
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        Self::check(value).map_err(|problem| match problem {
            SlugProblem::Invalid(rule) => FieldViolation::new(field, rule),
            SlugProblem::Reserved => FieldViolation::new(field, "is reserved"),
        })
    }

    /// The stored form of a slug to look an organization up by. A text that
    /// could never have been a slug is refused (naming `field`) rather than
    /// sent to the database; a reserved one is looked up, and is not found.
    pub fn lookup(field: &str, value: &str) -> Result<String, FieldViolation> {
        match Self::check(value) {
            Ok(slug) => Ok(slug.0),
            Err(SlugProblem::Reserved) => Ok(Self::normalize(value)),
            Err(SlugProblem::Invalid(rule)) => Err(FieldViolation::new(field, rule)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: valid, at most 254 characters, compared
/// case-insensitively, and one an invitation can be delivered to: no
/// quoted local part (`"a b"@example.com`: valid, but mail servers and the
/// portal's sign-up refuse it) and no control characters. A non-ASCII
/// address is accepted here; whether it can be delivered is the SMTP
/// server's to say (SMTPUTF8, see `mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// As given (trimmed): what we show and send to.
    original: String,
    /// Lower case: what we compare and index.
    folded: String,
}

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(FieldViolation::new(field, "must be at most 254 characters"));
        }
        no_control_characters(field, trimmed)?;
        // Quoting may cover the whole local part or one of its words
        // (`a."b c"@example.com`, RFC 5322's obsolete form).
        if trimmed
            .rsplit_once('@')
            .is_some_and(|(local, _)| local.contains('"'))
        {
            return Err(FieldViolation::new(
                field,
                "must not have a quoted local part: such an address cannot be delivered to",
            ));
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        EmailAddress::parse_with_options(trimmed, options).map_err(|err| {
            FieldViolation::new(field, format!("must be a valid email address ({err})"))
        })?;
        Ok(Self {
            original: trimmed.to_owned(),
            folded: Self::fold(trimmed),
        })
    }

    /// The comparison form of any address string.
    pub fn fold(value: &str) -> String {
        value.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// The longest display name roster stores (and its lower-case form).
pub const MAX_DISPLAY_NAME_CHARS: usize = 400;

/// The email of a person a platform administrator names (the owner of an
/// organization it creates, a member it adds), under the rule a token's
/// `email` claim follows: empty, or at most 254 characters without control
/// characters, trimmed. Where an unusable claim is set aside, a named
/// person's is refused: the administrator can send it again.
pub fn person_email(field: &str, value: &str) -> Result<String, FieldViolation> {
    let email = value.trim();
    if email.len() > Email::MAX_LEN {
        return Err(FieldViolation::new(field, "must be at most 254 characters"));
    }
    no_control_characters(field, email)?;
    Ok(email.to_owned())
}

/// The display name of a person a platform administrator names, under the
/// limits of a token's `name` claim: at most 400 characters (in lower
/// case too), trimmed; control characters are refused rather than dropped.
pub fn person_display_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    let name = value.trim();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS
        || name.to_lowercase().chars().count() > MAX_DISPLAY_NAME_CHARS
    {
        return Err(FieldViolation::new(field, "must be at most 400 characters"));
    }
    no_control_characters(field, name)?;
    Ok(name.to_owned())
}

/// Text an organization's name or slug must contain (`ListOrganizations`'
/// `query`), compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSearch(String);

impl OrganizationSearch {
    /// As long as the longest name: nothing longer can match.
    pub const MAX_CHARS: usize = 100;

    /// Empty (after trimming) means "no search".
    pub fn parse(field: &str, value: &str) -> Result<Option<Self>, FieldViolation> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new(field, "must be at most 100 characters"));
        }
        no_control_characters(field, trimmed)?;
        Ok(Some(Self(trimmed.to_lowercase())))
    }

    /// Lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A case-insensitive prefix of a member's email or display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPrefix(String);

impl SearchPrefix {
    pub const MAX_CHARS: usize = 254;

    /// Empty means "no search".
    pub fn parse(field: &str, value: &str) -> Result<Option<Self>, FieldViolation> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new(field, "must be at most 254 characters"));
        }
        no_control_characters(field, trimmed)?;
        Ok(Some(Self(trimmed.to_lowercase())))
    }

    /// Lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            OrganizationName::parse("name", "  Acme  ").map(|n| n.0),
            Ok("Acme".to_owned())
        );
        assert!(OrganizationName::parse("name", "   ").is_err());
        assert!(OrganizationName::parse("name", &"x".repeat(100)).is_ok());
        assert!(OrganizationName::parse("name", &"x".repeat(101)).is_err());
        assert!(OrganizationName::parse("name", &"é".repeat(100)).is_ok());
        assert!(OrganizationName::parse("name", "a\u{7}b").is_err());
    }

    #[test]
    fn slugs_follow_the_rule() {
        assert_eq!(
            Slug::check(" Acme-1 ").map(|s| s.0),
            Ok("acme-1".to_owned())
        );
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "ab_c",
            "ab c",
            "ábc",
            &"a".repeat(49),
        ] {
            assert!(
                matches!(Slug::check(bad), Err(SlugProblem::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(Slug::check("admin"), Err(SlugProblem::Reserved));
        assert!(Slug::check(&"a".repeat(48)).is_ok());
    }

    #[test]
    fn emails_are_validated_and_folded() {
        let email = Email::parse("email", " Alice@Example.COM ");
        assert_eq!(email.as_ref().map(Email::folded), Ok("alice@example.com"));
        assert_eq!(email.as_ref().map(Email::as_str), Ok("Alice@Example.COM"));
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "Alice <a@b.co>",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse("email", &long).is_err());
    }

    #[test]
    fn undeliverable_and_unstorable_emails_are_refused() {
        for bad in [
            "\"alice smith\"@example.com",
            "\"a\"@example.com",
            "alice.\"smith\"@example.com",
            "alice\0@example.com",
            "ali\nce@example.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse("email", "jörg@exämple.de").is_ok());
    }

    #[test]
    fn texts_with_control_characters_never_pass() {
        assert!(OrganizationName::parse("name", "a\0b").is_err());
        assert!(SearchPrefix::parse("search", "a\0").is_err());
        assert!(Slug::lookup("slug", "acme\0").is_err());
        assert!(Slug::lookup("slug", &"a".repeat(49)).is_err());
        assert_eq!(Slug::lookup("slug", " Acme "), Ok("acme".to_owned()));
        assert_eq!(Slug::lookup("slug", "admin"), Ok("admin".to_owned()));
    }
}
