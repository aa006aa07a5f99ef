//! Deciding what an import writes: Better Auth's rows judged by roster's
//! rules (the same parsers requests go through), every problem named with
//! its row, and what `--skip-invalid` and `--promote-oldest-admin` do
//! about them. Pure: no database here.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::{Builder, Uuid};

use super::better_auth::{self as ba, Snapshot};
use crate::domain::{
    identity::{Identity, IdentityState},
    ids::{DeveloperId, InvitationId, InvitationRef, MembershipId, OrganizationId, UserId},
    input::{Email, OrganizationName, Slug, SlugProblem},
    logo::{LogoImage, NewLogo},
    model::{InvitationState, Organization, Role},
};

/// How to treat problems instead of refusing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Leave out every row with a problem (an organization with one goes
    /// with all its members and invitations).
    pub skip_invalid: bool,
    /// An organization without an owner gets its oldest admin as owner.
    pub promote_oldest_admin: bool,
}

/// What roster already holds that an import must respect.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Every organization: (id, developer id, slug).
    pub organizations: Vec<(OrganizationId, String, String)>,
    /// Old slugs that renamed organizations still retain.
    pub retained_slugs: Vec<(String, OrganizationId)>,
}

/// What kind of finding, as printed (`[kind]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    InvalidDeveloperId,
    DeveloperIdTaken,
    InvalidSlug,
    ReservedSlug,
    SlugTaken,
    InvalidName,
    InvalidLogo,
    NoOwner,
    DuplicateMembership,
    MemberWithoutUser,
    UnknownOrganization,
    InvalidUserId,
    InvalidEmail,
    UnknownRole,
    OwnerInvitation,
    UnknownStatus,
    DuplicateInvitation,
    MissingExpiry,
    /// Not a problem: several roles, the highest taken.
    SeveralRoles,
    /// Not a problem: the slug is stored as roster stores slugs (trimmed,
    /// lower case), so it differs from Better Auth's.
    SlugNormalized,
    /// Not a problem: the active organization of a session is not carried
    /// over (the organization is not imported, or the user not its member).
    ActiveOrganizationDropped,
    /// Not a problem: an invitation is imported, but its Better Auth id
    /// cannot name it in roster (characters a URL path would change, or a
    /// UUID in another spelling, which roster reads as its own id), so the
    /// link in its email no longer opens it.
    InvitationIdDropped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidDeveloperId => "invalid_developer_id",
            Kind::DeveloperIdTaken => "developer_id_taken",
            Kind::InvalidSlug => "invalid_slug",
            Kind::ReservedSlug => "reserved_slug",
            Kind::SlugTaken => "slug_taken",
            Kind::InvalidName => "invalid_name",
            Kind::InvalidLogo => "invalid_logo",
            Kind::NoOwner => "no_owner",
            Kind::DuplicateMembership => "duplicate_membership",
            Kind::MemberWithoutUser => "member_without_user",
            Kind::UnknownOrganization => "unknown_organization",
            Kind::InvalidUserId => "invalid_user_id",
            Kind::InvalidEmail => "invalid_email",
            Kind::UnknownRole => "unknown_role",
            Kind::OwnerInvitation => "owner_invitation",
            Kind::UnknownStatus => "unknown_status",
            Kind::DuplicateInvitation => "duplicate_invitation",
            Kind::MissingExpiry => "missing_expiry",
            Kind::SeveralRoles => "several_roles",
            Kind::SlugNormalized => "slug_normalized",
            Kind::ActiveOrganizationDropped => "active_organization_dropped",
            Kind::InvitationIdDropped => "invitation_id_dropped",
        }
    }
}

/// What became of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A problem no flag resolves: the import refuses to apply.
    Refused,
    /// Left out, as `--skip-invalid` says.
    Skipped,
    /// The oldest admin becomes owner, as `--promote-oldest-admin` says.
    Promoted,
    /// Worth knowing; nothing wrong.
    Note,
}

/// One finding, naming the Better Auth row it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub table: &'static str,
    pub row: String,
    pub message: String,
    pub resolution: Resolution,
}

/// A membership to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMember {
    pub id: MembershipId,
    pub source_id: String,
    pub user: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// An invitation to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInvitation {
    pub id: InvitationId,
    pub source_id: String,
    /// `source_id`, kept so that it still names the invitation (the link in
    /// Better Auth's email carries it); `None` when roster's id is the
    /// Better Auth id itself, or when it cannot be kept.
    pub former_id: Option<String>,
    pub email: Email,
    pub role: Role,
    pub state: InvitationState,
    pub inviter: UserId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// An organization to write, with everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOrganization {
    pub organization: Organization,
    /// Its logo image, if its logo is one.
    pub logo_image: Option<LogoImage>,
    /// Its oldest owner: who created it, as far as roster can tell.
    pub created_by: UserId,
    pub members: Vec<PlannedMember>,
    pub invitations: Vec<PlannedInvitation>,
}

/// A person to know (members' email and name), written if roster has no
/// profile of them yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Everything an import would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub organizations: Vec<PlannedOrganization>,
    /// Imported by an earlier run (Better Auth id, slug): left as they are.
    pub already_imported: Vec<(String, String)>,
    pub users: Vec<PlannedUser>,
    /// Active organizations to carry over (where the user has none yet).
    pub active: Vec<(UserId, OrganizationId)>,
    pub findings: Vec<Finding>,
}

impl Plan {
    /// Whether a problem stands in the way of `--apply`.
    pub fn is_refused(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.resolution == Resolution::Refused)
    }

    /// Whether applying would write nothing.
    pub fn is_empty(&self) -> bool {
        self.organizations.is_empty() && self.users.is_empty() && self.active.is_empty()
    }
}

/// Namespace of the ids derived from Better Auth's (random, fixed).
const NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_59d2_4c7e_4a55_9a1e_32c4_d0b8_7f13);

/// roster's id for the Better Auth row `source_id` of `kind`: the id itself
/// when it is a UUID (Better Auth set to generate UUIDs); otherwise a
/// UUIDv7 of the row's creation time whose remaining bits come from the
/// Better Auth id, so every run derives the same id (the import is keyed
/// on Better Auth's ids) and ids still sort by creation time.
pub fn derived_id(kind: &str, source_id: &str, created_at: Option<DateTime<Utc>>) -> Uuid {
    if source_id.len() == 36
        && let Ok(id) = Uuid::try_parse(source_id)
    {
        return id;
    }
    let hash = Uuid::new_v5(
        &NAMESPACE,
        format!("better-auth/{kind}/{source_id}").as_bytes(),
    );
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash.as_bytes()[6..16]);
    let millis = created_at.map_or(0, |t| u64::try_from(t.timestamp_millis()).unwrap_or(0));
    Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// The Better Auth id an invitation keeps as its former id, if it needs
/// one and can have it (see [`InvitationRef`]).
fn former_id(
    id: InvitationId,
    source_id: &str,
    row: &str,
    findings: &mut Findings<'_>,
) -> Option<String> {
    match InvitationRef::parse("id", source_id) {
        Ok(InvitationRef::Id(named)) if named == id => None,
        Ok(InvitationRef::Source(source)) => Some(source),
        Ok(InvitationRef::Id(_)) | Err(_) => {
            findings.push(
                Kind::InvitationIdDropped,
                "invitation",
                row,
                format!(
                    "id {source_id:?} cannot name the invitation in roster: \
                     the link in its email will not open it (roster's id is {id})"
                ),
                Resolution::Note,
            );
            None
        }
    }
}

/// The roles in a Better Auth role string (`"admin,member"`): the highest
/// known one, whether there were several, and any unknown names.
fn parse_roles(value: &str) -> (Option<Role>, bool, Vec<String>) {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| Role::from_db(n).is_none())
        .map(|n| (*n).to_owned())
        .collect();
    let highest = names
        .iter()
        .filter_map(|n| Role::from_db(n))
        .min_by_key(|role| rank(*role));
    (highest, names.len() > 1, unknown)
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Member => 2,
    }
}

/// Collects findings, resolving each as the options say.
struct Findings<'a> {
    options: &'a Options,
    list: Vec<Finding>,
}

impl Findings<'_> {
    /// A problem that `--skip-invalid` resolves by leaving the row out.
    fn skippable(&mut self, kind: Kind, table: &'static str, row: &str, message: String) {
        let resolution = if self.options.skip_invalid {
            Resolution::Skipped
        } else {
            Resolution::Refused
        };
        self.push(kind, table, row, message, resolution);
    }

    fn push(
        &mut self,
        kind: Kind,
        table: &'static str,
        row: &str,
        message: String,
        resolution: Resolution,
    ) {
        self.list.push(Finding {
            kind,
            table,
            row: row.to_owned(),
            message,
            resolution,
        });
    }
}

/// Judges `snapshot` against roster's rules and what roster holds; `now`
/// decides which pending invitations have expired.
pub fn plan(
    snapshot: &Snapshot,
    existing: &Existing,
    options: &Options,
    now: DateTime<Utc>,
) -> Plan {
    let mut findings = Findings {
        options,
        list: Vec::new(),
    };
    let users: HashMap<&str, &ba::User> =
        snapshot.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let by_developer: HashMap<&str, OrganizationId> = existing
        .organizations
        .iter()
        .map(|(id, developer, _)| (developer.as_str(), *id))
        .collect();
    let mut slugs_taken: HashMap<String, String> = existing
        .organizations
        .iter()
        .map(|(_, developer, slug)| (slug.clone(), format!("roster's organization {developer}")))
        .collect();
    for (slug, organization) in &existing.retained_slugs {
        slugs_taken.insert(
            slug.clone(),
            format!("roster's organization {organization}, which retains it after a rename"),
        );
    }

    let mut plan = Plan::default();
    // Oldest first, so that of two organizations whose slugs collide the
    // older one keeps it.
    let mut organizations: Vec<&ba::Organization> = snapshot.organizations.iter().collect();
    organizations.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let known_orgs: HashSet<&str> = organizations.iter().map(|o| o.id.as_str()).collect();
    let mut members_of: BTreeMap<&str, Vec<&ba::Member>> = BTreeMap::new();
    for member in &snapshot.members {
        if known_orgs.contains(member.organization_id.as_str()) {
            members_of
                .entry(member.organization_id.as_str())
                .or_default()
                .push(member);
        } else {
            findings.skippable(
                Kind::UnknownOrganization,
                "member",
                &member.id,
                format!("organization {:?} does not exist", member.organization_id),
            );
        }
    }
    let mut invitations_of: BTreeMap<&str, Vec<&ba::Invitation>> = BTreeMap::new();
    for invitation in &snapshot.invitations {
        if known_orgs.contains(invitation.organization_id.as_str()) {
            invitations_of
                .entry(invitation.organization_id.as_str())
                .or_default()
                .push(invitation);
        } else {
            findings.skippable(
                Kind::UnknownOrganization,
                "invitation",
                &invitation.id,
                format!(
                    "organization {:?} does not exist",
                    invitation.organization_id
                ),
            );
        }
    }

    let mut planned_users: BTreeMap<String, PlannedUser> = BTreeMap::new();
    for source in organizations {
        let id = OrganizationId(derived_id("organization", &source.id, source.created_at));
        match by_developer.get(source.id.as_str()) {
            Some(existing_id) if *existing_id == id => {
                plan.already_imported
                    .push((source.id.clone(), source.slug.clone()));
                continue;
            }
            Some(other) => {
                findings.skippable(
                    Kind::DeveloperIdTaken,
                    "organization",
                    &source.id,
                    format!("roster's organization {other} already has this developer id"),
                );
                continue;
            }
            None => {}
        }
        let members = members_of.remove(source.id.as_str()).unwrap_or_default();
        let invitations = invitations_of
            .remove(source.id.as_str())
            .unwrap_or_default();
        let judged = judge_organization(source, id, &mut slugs_taken, &mut findings);
        // Judged even when the organization is left out, so that one run
        // reports every problem there is.
        let contents = judge_contents(
            &source.id,
            source.created_at.unwrap_or(now),
            &members,
            &invitations,
            &users,
            &mut planned_users,
            &mut findings,
            now,
        );
        if let (Some((organization, logo_image)), Some(created_by)) = (judged, contents.created_by)
        {
            plan.organizations.push(PlannedOrganization {
                organization,
                logo_image,
                created_by,
                members: contents.members,
                invitations: contents.invitations,
            });
        }
    }

    // Only the people who end up members are written.
    let members: HashSet<(&str, OrganizationId)> = plan
        .organizations
        .iter()
        .flat_map(|o| {
            o.members
                .iter()
                .map(move |m| (m.user.as_str(), o.organization.id))
        })
        .collect();
    let member_users: HashSet<&str> = members.iter().map(|(u, _)| *u).collect();
    plan.users = planned_users
        .into_values()
        .filter(|u| member_users.contains(u.id.as_str()))
        .collect();
    plan.active = active_organizations(snapshot, &plan, &members, &mut findings);
    plan.findings = findings.list;
    plan
}

/// The organization row by roster's rules; `None` if it is left out.
fn judge_organization(
    source: &ba::Organization,
    id: OrganizationId,
    slugs_taken: &mut HashMap<String, String>,
    findings: &mut Findings<'_>,
) -> Option<(Organization, Option<LogoImage>)> {
    let row = source.id.as_str();
    let mut ok = true;
    let developer_id = match DeveloperId::parse("id", &source.id) {
        Ok(developer) => Some(developer),
        Err(v) => {
            findings.skippable(
                Kind::InvalidDeveloperId,
                "organization",
                row,
                format!("id cannot be a developer id: {}", v.description),
            );
            None
        }
    };
    let slug = match Slug::check(&source.slug) {
        Ok(slug) => {
            if slug.as_str() != source.slug {
                findings.push(
                    Kind::SlugNormalized,
                    "organization",
                    row,
                    format!("slug {:?} is imported as {:?}", source.slug, slug.as_str()),
                    Resolution::Note,
                );
            }
            Some(slug.as_str().to_owned())
        }
        Err(SlugProblem::Invalid(rule)) => {
            findings.skippable(
                Kind::InvalidSlug,
                "organization",
                row,
                format!("slug {:?} {rule}", source.slug),
            );
            None
        }
        Err(SlugProblem::Reserved) => {
            findings.skippable(
                Kind::ReservedSlug,
                "organization",
                row,
                format!("slug {:?} is reserved in roster", source.slug),
            );
            None
        }
    };
    if let Some(slug) = &slug {
        if let Some(holder) = slugs_taken.get(slug) {
            findings.skippable(
                Kind::SlugTaken,
                "organization",
                row,
                format!("slug {slug:?} is taken by {holder}"),
            );
            ok = false;
        } else {
            slugs_taken.insert(slug.clone(), format!("Better Auth organization {row}"));
        }
    }
    let name = OrganizationName::parse("name", &source.name)
        .map_err(|v| {
            findings.skippable(
                Kind::InvalidName,
                "organization",
                row,
                format!("name {}", v.description),
            );
        })
        .ok();
    // The portal stores uploaded logos as data URLs: the same rule as
    // CreateOrganization's, images included.
    let logo = NewLogo::parse("logo", &source.logo)
        .map_err(|v| {
            findings.skippable(
                Kind::InvalidLogo,
                "organization",
                row,
                format!("logo {}", v.description),
            );
        })
        .ok();
    let (Some(developer_id), Some(slug), Some(name), Some(logo), true) =
        (developer_id, slug, name, logo, ok)
    else {
        return None;
    };
    let created_at = source.created_at.unwrap_or_else(crate::domain::now);
    let organization = Organization {
        id,
        developer_id,
        name: name.as_str().to_owned(),
        slug,
        logo: logo.logo(),
        version: 1,
        created_at,
        updated_at: created_at,
        // It exists in the Provider Portal already: the portal made it
        // there under this very id. Reconciliation checks it.
        identity: Identity::new(IdentityState::Active),
        limits: crate::domain::model::LimitOverrides::default(),
        // Better Auth has no suspension or soft deletion: what it holds is live.
        lifecycle: crate::domain::lifecycle::Lifecycle::default(),
    };
    let image = match logo {
        NewLogo::Image(image) => Some(image),
        NewLogo::None | NewLogo::Url(_) => None,
    };
    Some((organization, image))
}

/// What one organization holds, as roster would import it.
struct Contents {
    members: Vec<PlannedMember>,
    invitations: Vec<PlannedInvitation>,
    /// Its oldest owner; `None` leaves the organization out (no owner).
    created_by: Option<UserId>,
}

/// Members and invitations of one organization (Better Auth row `org_row`,
/// created at `organization_created`).
#[allow(clippy::too_many_arguments)]
fn judge_contents(
    org_row: &str,
    organization_created: DateTime<Utc>,
    members: &[&ba::Member],
    invitations: &[&ba::Invitation],
    users: &HashMap<&str, &ba::User>,
    planned_users: &mut BTreeMap<String, PlannedUser>,
    findings: &mut Findings<'_>,
    now: DateTime<Utc>,
) -> Contents {
    let mut planned: Vec<PlannedMember> = Vec::new();
    // Oldest first: of duplicate memberships the oldest is kept.
    let mut members = members.to_vec();
    members.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for member in members {
        let row = member.id.as_str();
        if let Some(first) = seen.get(member.user_id.as_str()) {
            findings.skippable(
                Kind::DuplicateMembership,
                "member",
                row,
                format!(
                    "user {:?} is already a member of organization {org_row} (row {first})",
                    member.user_id
                ),
            );
            continue;
        }
        seen.insert(member.user_id.as_str(), row);
        let Some(user) = users.get(member.user_id.as_str()) else {
            findings.skippable(
                Kind::MemberWithoutUser,
                "member",
                row,
                format!("user {:?} has no user row", member.user_id),
            );
            continue;
        };
        let user_id = match UserId::parse("userId", &member.user_id) {
            Ok(id) => id,
            Err(v) => {
                findings.skippable(
                    Kind::InvalidUserId,
                    "member",
                    row,
                    format!("user id {:?} {}", member.user_id, v.description),
                );
                continue;
            }
        };
        if let Err(v) = Email::parse("email", &user.email) {
            findings.skippable(
                Kind::InvalidEmail,
                "user",
                &user.id,
                format!("email {:?} {}", user.email, v.description),
            );
            continue;
        }
        let (role, several, unknown) = parse_roles(&member.role);
        let role = match (role, unknown.is_empty()) {
            (Some(role), true) => role,
            _ => {
                findings.skippable(
                    Kind::UnknownRole,
                    "member",
                    row,
                    format!(
                        "role {:?}: roster knows owner, admin and member only",
                        member.role
                    ),
                );
                continue;
            }
        };
        if several {
            findings.push(
                Kind::SeveralRoles,
                "member",
                row,
                format!("roles {:?}: imported as {}", member.role, role.as_str()),
                Resolution::Note,
            );
        }
        planned_users
            .entry(user.id.clone())
            .or_insert_with(|| PlannedUser {
                id: user_id.clone(),
                email: user.email.trim().to_owned(),
                name: user.name.clone(),
                created_at: user.created_at.unwrap_or(now),
            });
        planned.push(PlannedMember {
            id: MembershipId(derived_id("member", &member.id, member.created_at)),
            source_id: member.id.clone(),
            user: user_id,
            role,
            joined_at: member.created_at.unwrap_or(organization_created),
        });
    }
    if !planned.iter().any(|m| m.role == Role::Owner) {
        let oldest_admin = planned.iter_mut().find(|m| m.role == Role::Admin);
        match oldest_admin {
            Some(admin) if findings.options.promote_oldest_admin => {
                admin.role = Role::Owner;
                let message = format!(
                    "no owner: the oldest admin, user {:?}, becomes owner",
                    admin.user.as_str()
                );
                findings.push(
                    Kind::NoOwner,
                    "organization",
                    org_row,
                    message,
                    Resolution::Promoted,
                );
            }
            Some(_) => findings.skippable(
                Kind::NoOwner,
                "organization",
                org_row,
                "no owner (--promote-oldest-admin would make the oldest admin owner)".to_owned(),
            ),
            None => findings.skippable(
                Kind::NoOwner,
                "organization",
                org_row,
                "no owner and no admin to promote".to_owned(),
            ),
        }
    }
    let created_by = planned
        .iter()
        .find(|m| m.role == Role::Owner)
        .map(|m| m.user.clone());
    let invitations = judge_invitations(org_row, invitations, findings, now);
    Contents {
        members: planned,
        invitations,
        created_by,
    }
}

fn judge_invitations(
    org_row: &str,
    invitations: &[&ba::Invitation],
    findings: &mut Findings<'_>,
    now: DateTime<Utc>,
) -> Vec<PlannedInvitation> {
    let mut planned: Vec<PlannedInvitation> = Vec::new();
    // Newest first: of two pending invitations to one address, the newest is kept.
    let mut invitations = invitations.to_vec();
    invitations.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let mut pending: HashMap<String, &str> = HashMap::new();
    for invitation in invitations {
        let row = invitation.id.as_str();
        let email = match Email::parse("email", &invitation.email) {
            Ok(email) => email,
            Err(v) => {
                findings.skippable(
                    Kind::InvalidEmail,
                    "invitation",
                    row,
                    format!("email {:?} {}", invitation.email, v.description),
                );
                continue;
            }
        };
        let (role, several, unknown) = parse_roles(&invitation.role);
        let role = match (role, unknown.is_empty()) {
            (Some(Role::Owner), true) => {
                findings.skippable(
                    Kind::OwnerInvitation,
                    "invitation",
                    row,
                    format!(
                        "role {:?}: roster invites admins and members only",
                        invitation.role
                    ),
                );
                continue;
            }
            (Some(role), true) => role,
            _ => {
                findings.skippable(
                    Kind::UnknownRole,
                    "invitation",
                    row,
                    format!("role {:?}: roster knows admin and member", invitation.role),
                );
                continue;
            }
        };
        if several {
            findings.push(
                Kind::SeveralRoles,
                "invitation",
                row,
                format!("roles {:?}: imported as {}", invitation.role, role.as_str()),
                Resolution::Note,
            );
        }
        let Some(expires_at) = invitation.expires_at else {
            findings.skippable(
                Kind::MissingExpiry,
                "invitation",
                row,
                "no expiresAt".to_owned(),
            );
            continue;
        };
        let state = match invitation.status.as_str() {
            "pending" if expires_at <= now => InvitationState::Expired,
            "pending" => InvitationState::Pending,
            "accepted" => InvitationState::Accepted,
            "rejected" => InvitationState::Rejected,
            "canceled" | "cancelled" => InvitationState::Cancelled,
            other => {
                findings.skippable(
                    Kind::UnknownStatus,
                    "invitation",
                    row,
                    format!("status {other:?} is none of pending, accepted, rejected, canceled"),
                );
                continue;
            }
        };
        let inviter = match UserId::parse("inviterId", &invitation.inviter_id) {
            Ok(inviter) => inviter,
            Err(v) => {
                findings.skippable(
                    Kind::InvalidUserId,
                    "invitation",
                    row,
                    format!("inviter {:?} {}", invitation.inviter_id, v.description),
                );
                continue;
            }
        };
        if state == InvitationState::Pending {
            if let Some(kept) = pending.get(email.folded()) {
                findings.skippable(
                    Kind::DuplicateInvitation,
                    "invitation",
                    row,
                    format!(
                        "{email} has a newer pending invitation to organization {org_row} (row {kept})"
                    ),
                );
                continue;
            }
            pending.insert(email.folded().to_owned(), row);
        }
        let id = InvitationId(derived_id(
            "invitation",
            &invitation.id,
            invitation.created_at,
        ));
        let former_id = former_id(id, &invitation.id, row, findings);
        planned.push(PlannedInvitation {
            id,
            source_id: invitation.id.clone(),
            former_id,
            email,
            role,
            state,
            inviter,
            expires_at,
            created_at: invitation.created_at.unwrap_or(now),
        });
    }
    planned.reverse();
    planned
}

/// Each user's active organization: that of their most recently used
/// session that has one, if it is imported now and they are a member.
fn active_organizations(
    snapshot: &Snapshot,
    plan: &Plan,
    members: &HashSet<(&str, OrganizationId)>,
    findings: &mut Findings<'_>,
) -> Vec<(UserId, OrganizationId)> {
    let imported: HashMap<&str, OrganizationId> = plan
        .organizations
        .iter()
        .map(|o| (o.organization.developer_id.as_str(), o.organization.id))
        .collect();
    let already: HashSet<&str> = plan
        .already_imported
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let mut newest: BTreeMap<&str, &ba::Session> = BTreeMap::new();
    for session in &snapshot.sessions {
        if session.active_organization_id.is_none() {
            continue;
        }
        let entry = newest.entry(session.user_id.as_str()).or_insert(session);
        if session.seen_at > entry.seen_at {
            *entry = session;
        }
    }
    let mut active = Vec::new();
    for (user, session) in newest {
        let Some(source_org) = session.active_organization_id.as_deref() else {
            continue;
        };
        if already.contains(source_org) {
            continue;
        }
        match imported.get(source_org) {
            Some(org) if members.contains(&(user, *org)) => {
                active.push((UserId::from_trusted(user.to_owned()), *org));
            }
            _ => findings.push(
                Kind::ActiveOrganizationDropped,
                "session",
                user,
                format!(
                    "active organization {source_org:?} of user {user:?} is not carried over: \
                     it is not imported, or they are not imported as its member"
                ),
                Resolution::Note,
            ),
        }
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_of_several_roles() {
        assert_eq!(
            parse_roles("admin,member"),
            (Some(Role::Admin), true, vec![])
        );
        assert_eq!(
            parse_roles("member, owner"),
            (Some(Role::Owner), true, vec![])
        );
        assert_eq!(parse_roles("member"), (Some(Role::Member), false, vec![]));
        assert_eq!(
            parse_roles("billing,member"),
            (Some(Role::Member), true, vec!["billing".to_owned()])
        );
        assert_eq!(parse_roles(""), (None, false, vec![]));
    }

    #[test]
    fn derived_ids_are_stable_time_ordered_and_keep_uuids() {
        let t = DateTime::from_timestamp_millis(1_796_133_831_000);
        let a = derived_id("organization", "02JaRNQKIy9FdTjwe8S4ElIvXvrObFhS", t);
        assert_eq!(
            a,
            derived_id("organization", "02JaRNQKIy9FdTjwe8S4ElIvXvrObFhS", t)
        );
        assert_ne!(
            a,
            derived_id("member", "02JaRNQKIy9FdTjwe8S4ElIvXvrObFhS", t)
        );
        assert_eq!(a.get_version_num(), 7);
        let later = derived_id(
            "organization",
            "a",
            DateTime::from_timestamp_millis(1_796_133_832_000),
        );
        assert!(a < later);
        let uuid = "0190e4a4-5b6c-7d8e-9f00-112233445566";
        assert_eq!(derived_id("invitation", uuid, t).to_string(), uuid);
    }
}
