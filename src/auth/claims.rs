//! What roster keeps of a token's profile claims (`name`, `email`), which
//! it records as the person's profile on every write they make. A token is
//! signed by the identity provider, not checked by it for what roster's
//! columns hold, so the claims are made to fit here, once, the same way on
//! SQLite and PostgreSQL:
//!
//! - `name` is a display name only: control characters are dropped,
//!   surrounding spaces trimmed, and a name longer than
//!   [`MAX_DISPLAY_NAME_CHARS`] (or whose lower-case form is) is clipped at
//!   a character boundary.
//! - `email` is an identity (invitations are matched against it), so it is
//!   never altered: one with a control character or longer than
//!   [`Email::MAX_LEN`] is unusable, and the calls that need the caller's
//!   email refuse with `UNAUTHENTICATED` `INVALID_EMAIL_CLAIM`; the others
//!   work, recording no email.
//!
//! It also owns the shapes identity providers give the other claims
//! ([`OneOrMany`], [`EmailVerified`]): RFC 7519 lets `aud` be a string or
//! an array, OAuth providers send scopes as a space-separated `scope`, an
//! array, or `scp` (Azure AD, Okta), and some send `email_verified` as the
//! string `"true"`. Anything else in those claims refuses the token.

use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::Value;

use crate::domain::{ids::UserId, input::Email};

/// The `users.display_name` column (and its lower-case twin), in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 400;

/// The `email` claim as roster can use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailClaim {
    /// No claim, or an empty one.
    Absent,
    Usable(String),
    /// Present, but it cannot be stored or matched.
    Unusable,
}

/// The display name roster records for a `name` claim; `None` when nothing
/// is left of it.
pub fn display_name(claim: Option<&str>) -> Option<String> {
    let cleaned: String = claim?.chars().filter(|c| !c.is_control()).collect();
    let mut name = String::new();
    let (mut chars, mut lower_chars) = (0, 0);
    for c in cleaned.trim().chars() {
        let lower = c.to_lowercase().count();
        if chars + 1 > MAX_DISPLAY_NAME_CHARS || lower_chars + lower > MAX_DISPLAY_NAME_CHARS {
            break;
        }
        chars += 1;
        lower_chars += lower;
        name.push(c);
    }
    let name = name.trim_end();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Sorts an `email` claim into usable or not.
pub fn email(claim: Option<&str>) -> EmailClaim {
    match claim.map(str::trim) {
        None | Some("") => EmailClaim::Absent,
        Some(email) if email.len() > Email::MAX_LEN || email.chars().any(char::is_control) => {
            EmailClaim::Unusable
        }
        Some(email) => EmailClaim::Usable(email.to_owned()),
    }
}

/// How deep a chain of `act` claims may nest (each a prior actor): deep
/// enough for any delegation a person would follow, and a bound on what a
/// token makes roster walk.
pub const MAX_ACT_DEPTH: usize = 8;

/// The `act` claim is not what RFC 8693 §4.1 says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAct;

/// The acting party of an RFC 8693 `act` claim: its `sub`, the party
/// acting now (a nested `act` names the one who acted for that party
/// before, and so on). The claim must be a JSON object whose `sub` is a
/// user id (a non-empty string of at most 255 characters, no control
/// characters or surrounding spaces); a nested `act` must be one too, at
/// most [`MAX_ACT_DEPTH`] deep. Other members (`iss`, say) are allowed
/// and not read. `None` without the claim.
pub fn acting_party(claim: Option<&Value>) -> Result<Option<String>, MalformedAct> {
    let Some(mut act) = claim else {
        return Ok(None);
    };
    let mut outermost = None;
    for _ in 0..MAX_ACT_DEPTH {
        let object = act.as_object().ok_or(MalformedAct)?;
        let sub = object
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(MalformedAct)?;
        let sub = UserId::parse("act.sub", sub).map_err(|_| MalformedAct)?;
        outermost.get_or_insert(sub);
        match object.get("act") {
            None => return Ok(outermost.map(|sub| sub.as_str().to_owned())),
            Some(nested) => act = nested,
        }
    }
    Err(MalformedAct)
}

/// Deserializes a claim that, when present, must be read whatever it is:
/// `null` included (serde's `Option` would make it absent).
pub fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A claim that is one string or an array of strings (`aud`, `scope`, `scp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings the claim holds, one or many.
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }

    /// The scopes this claim grants: a string is space-separated (RFC
    /// 8693's `scope`); each element of an array is one scope (a space in
    /// one still separates, as no scope contains one).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.values()
            .iter()
            .flat_map(|value| value.split_whitespace())
    }
}

/// `email_verified`: a boolean, or the strings `"true"` and `"false"`
/// (as some providers send it); absent means not verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailVerified(pub bool);

impl<'de> Deserialize<'de> for EmailVerified {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Bool(bool),
            Text(String),
        }
        match Shape::deserialize(deserializer)? {
            Shape::Bool(verified) => Ok(Self(verified)),
            Shape::Text(text) if text == "true" => Ok(Self(true)),
            Shape::Text(text) if text == "false" => Ok(Self(false)),
            Shape::Text(_) => Err(D::Error::custom(
                "email_verified must be true or false (a boolean or that string)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_verified_is_a_boolean_or_its_string() {
        let parse = |json: &str| serde_json::from_str::<EmailVerified>(json).map(|v| v.0);
        assert!(parse("true").unwrap());
        assert!(!parse("false").unwrap());
        assert!(parse(r#""true""#).unwrap());
        assert!(!parse(r#""false""#).unwrap());
        for refused in [r#""yes""#, r#""TRUE""#, r#""""#, "1", "null", "[]"] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn scopes_come_from_a_string_or_an_array() {
        let parse = |json: &str| serde_json::from_str::<OneOrMany>(json);
        let scopes = |claim: OneOrMany| claim.scopes().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            scopes(parse(r#"" events.read  authz.check""#).unwrap()),
            ["events.read", "authz.check"]
        );
        assert_eq!(
            scopes(parse(r#"["events.read", "authz.check"]"#).unwrap()),
            ["events.read", "authz.check"]
        );
        for refused in ["1", "{}", r#"["events.read", 2]"#, "true"] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn names_are_cleaned_and_clipped_at_a_character_boundary() {
        assert_eq!(display_name(Some(" Bob\0 ")), Some("Bob".to_owned()));
        assert_eq!(display_name(Some("\0\n")), None);
        assert_eq!(display_name(None), None);
        let long = "é".repeat(1000);
        let clipped = display_name(Some(&long)).unwrap();
        assert_eq!(clipped.chars().count(), MAX_DISPLAY_NAME_CHARS);
        // U+0130 becomes two characters in lower case: the lower-case form must fit too.
        let dotted = "\u{130}".repeat(1000);
        let clipped = display_name(Some(&dotted)).unwrap();
        assert!(clipped.to_lowercase().chars().count() <= MAX_DISPLAY_NAME_CHARS);
        assert_eq!(clipped.chars().count(), MAX_DISPLAY_NAME_CHARS / 2);
    }

    #[test]
    fn the_acting_party_is_the_outermost_sub_of_a_well_formed_chain() {
        use serde_json::json;
        let party = |v: Value| acting_party(Some(&v));
        assert_eq!(acting_party(None), Ok(None));
        assert_eq!(party(json!({"sub": "agent"})), Ok(Some("agent".into())));
        assert_eq!(
            party(json!({"sub": "agent", "iss": "idp", "act": {"sub": "tool"}})),
            Ok(Some("agent".into()))
        );
        let mut deep = json!({"sub": "last"});
        for n in 0..MAX_ACT_DEPTH {
            deep = json!({"sub": format!("a{n}"), "act": deep});
        }
        for refused in [
            json!("agent"),
            json!(null),
            json!([{"sub": "agent"}]),
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 7}),
            json!({"sub": " agent"}),
            json!({"sub": "a\u{0}b"}),
            json!({"sub": "x".repeat(256)}),
            json!({"sub": "agent", "act": "tool"}),
            json!({"sub": "agent", "act": {"sub": ""}}),
            deep,
        ] {
            assert_eq!(party(refused.clone()), Err(MalformedAct), "{refused}");
        }
    }

    #[test]
    fn emails_that_cannot_be_stored_are_unusable() {
        assert_eq!(email(None), EmailClaim::Absent);
        assert_eq!(email(Some(" ")), EmailClaim::Absent);
        assert_eq!(
            email(Some("bob@example.com")),
            EmailClaim::Usable("bob@example.com".into())
        );
        assert_eq!(email(Some("bob\0@example.com")), EmailClaim::Unusable);
        let long = format!("{}@example.com", "b".repeat(250));
        assert_eq!(email(Some(&long)), EmailClaim::Unusable);
    }
}
