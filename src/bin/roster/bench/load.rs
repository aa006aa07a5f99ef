//! The workloads and the loop that drives them.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::ValueEnum;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{BenchArgs, BenchError, Outcome, seed::Seeded};
use roster::{
    auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
    pb::{
        self, authorization_service_client::AuthorizationServiceClient,
        get_organization_request::Key, membership_service_client::MembershipServiceClient,
        organization_service_client::OrganizationServiceClient,
    },
};

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Workload {
    /// grpc.health.v1.Health/Check: the baseline.
    Health,
    /// One permission check of a random membership.
    CheckPermission,
    /// The same, naming the organization by its slug (as the portal's
    /// backend does, from its URLs).
    CheckPermissionBySlug,
    /// Ten permission checks of random memberships in one call.
    BatchCheck10,
    /// GetOrganization by id, as its owner.
    GetOrganization,
    /// The first page of 50 of the big organization's members.
    ListMembers,
    /// An owner switches a member between admin and member.
    UpdateMemberRole,
    /// A new organization.
    CreateOrganization,
    /// A new invitation to a new address.
    CreateInvitation,
    /// The first page of 50 of the organizations where a random user holds
    /// `applications.read` (a service with `authz.check`).
    LookupOrganizations,
    /// The first page of 50 of the big organization's users who hold
    /// `applications.read`.
    LookupUsers,
    /// CheckPermission over Connect with a JSON body (reqwest, HTTP/2).
    ConnectJsonCheckPermission,
    /// GetOrganization over Connect with a JSON body (reqwest, HTTP/2).
    ConnectJsonGetOrganization,
    /// GetOrganization and CheckPermission without, then with,
    /// `--idle-streams` StreamEvents open and idle (see `idle_streams.rs`).
    IdleStreams,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Health => "health_check",
            Workload::CheckPermission => "check_permission",
            Workload::CheckPermissionBySlug => "check_permission_by_slug",
            Workload::BatchCheck10 => "batch_check_permissions_10",
            Workload::GetOrganization => "get_organization",
            Workload::ListMembers => "list_members_50_of_10k",
            Workload::UpdateMemberRole => "update_member_role",
            Workload::CreateOrganization => "create_organization",
            Workload::CreateInvitation => "create_invitation",
            Workload::LookupOrganizations => "lookup_organizations_50",
            Workload::LookupUsers => "lookup_users_50_of_10k",
            Workload::ConnectJsonCheckPermission => "connect_json_check_permission",
            Workload::ConnectJsonGetOrganization => "connect_json_get_organization",
            Workload::IdleStreams => "idle_streams",
        }
    }
}

/// Organizations whose owners get a token (and so receive owner calls).
const OWNER_ORGANIZATIONS: usize = 1_000;

/// A small, fast generator; the benchmark needs spread, not secrecy.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap_or(0)
    }
}

pub(super) type Bearer = MetadataValue<Ascii>;

pub(super) fn bearer(request: TokenRequest) -> Result<Bearer, BenchError> {
    let token = mint_hs256(DEVELOPMENT_SECRET, &request).map_err(|e| BenchError(e.to_string()))?;
    format!("Bearer {token}")
        .parse()
        .map_err(|_| BenchError("token is not ASCII".into()))
}

fn user_token(user: &str) -> Result<Bearer, BenchError> {
    bearer(TokenRequest {
        sub: user.to_owned(),
        email: Some(format!("{user}@bench.example.com")),
        name: Some(user.to_owned()),
        email_verified: true,
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

pub(super) fn with_auth<T>(message: T, token: &Bearer) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

/// Everything the workers share.
struct Shared {
    channels: Vec<Channel>,
    /// Connect clients: one HTTP/2 connection each, as many as `channels`.
    http: Vec<reqwest::Client>,
    /// `http://address`, for the Connect URLs.
    base: String,
    seeded: Seeded,
    service_token: Bearer,
    /// Owner tokens of the first organizations (index = organization index).
    owner_tokens: Vec<Bearer>,
}

/// Drives workloads against one server.
pub struct Runner {
    shared: Arc<Shared>,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
}

impl Runner {
    pub async fn new(
        address: SocketAddr,
        args: &BenchArgs,
        seeded: Seeded,
    ) -> Result<Self, BenchError> {
        let endpoint = Channel::from_shared(format!("http://{address}"))
            .map_err(|e| BenchError(e.to_string()))?;
        let mut channels = Vec::new();
        for _ in 0..args.connections.max(1) {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .map_err(|e| BenchError(e.to_string()))?,
            );
        }
        let http = (0..channels.len())
            .map(|_| {
                reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| BenchError(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let service_token = bearer(TokenRequest {
            sub: "bench-service".into(),
            scopes: vec!["authz.check".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        })?;
        let owner_tokens = seeded
            .owners
            .iter()
            .take(OWNER_ORGANIZATIONS)
            .map(|owner| user_token(owner))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            shared: Arc::new(Shared {
                channels,
                http,
                base: format!("http://{address}"),
                seeded,
                service_token,
                owner_tokens,
            }),
            concurrency: args.concurrency.max(1),
            duration: args.duration,
            warmup: args.warmup,
        })
    }

    /// Runs `workload` (warm-up, then the measured period) and sums up.
    pub async fn measure(&self, workload: Workload) -> Outcome {
        let started = Instant::now();
        let warm_until = started + self.warmup;
        let stop_at = warm_until + self.duration;
        let workers = (0..self.concurrency).map(|worker| {
            let shared = self.shared.clone();
            let concurrency = self.concurrency;
            tokio::spawn(async move {
                let mut state = Worker::new(shared, worker, concurrency);
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                loop {
                    let begun = Instant::now();
                    if begun >= stop_at {
                        break;
                    }
                    let ok = state.call(workload).await;
                    if begun >= warm_until {
                        if ok {
                            let micros =
                                u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX);
                            latencies.push(micros);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        });
        let mut latencies: Vec<u32> = Vec::new();
        let mut errors = 0;
        for (mut worker_latencies, worker_errors) in futures::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
        {
            latencies.append(&mut worker_latencies);
            errors += worker_errors;
        }
        latencies.sort_unstable();
        let percentile = |p: f64| {
            if latencies.is_empty() {
                return 0.0;
            }
            let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            f64::from(latencies[rank - 1]) / 1000.0
        };
        let seconds = self.duration.as_secs_f64();
        let requests = latencies.len() as u64;
        let requests_per_second = requests as f64 / seconds;
        Outcome {
            workload: workload.name().to_owned(),
            requests,
            errors,
            requests_per_second,
            checks_per_second: (workload == Workload::BatchCheck10)
                .then_some(requests_per_second * 10.0),
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
            p999_ms: percentile(0.999),
            ratio_to_health: 0.0,
            ratio_to_without_streams: None,
        }
    }
}

/// One worker's clients and its own bookkeeping.
struct Worker {
    shared: Arc<Shared>,
    id: usize,
    concurrency: usize,
    dice: Dice,
    counter: u64,
    /// Roles this worker has set (it alone touches these memberships).
    roles: HashMap<(usize, usize), pb::Role>,
    health: HealthClient<Channel>,
    authz: AuthorizationServiceClient<Channel>,
    orgs: OrganizationServiceClient<Channel>,
    members: MembershipServiceClient<Channel>,
    http: reqwest::Client,
}

impl Worker {
    fn new(shared: Arc<Shared>, id: usize, concurrency: usize) -> Self {
        let channel = shared.channels[id % shared.channels.len()].clone();
        Self {
            dice: Dice(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            counter: 0,
            roles: HashMap::new(),
            health: HealthClient::new(channel.clone()),
            authz: AuthorizationServiceClient::new(channel.clone()),
            orgs: OrganizationServiceClient::new(channel.clone()),
            members: MembershipServiceClient::new(channel),
            http: shared.http[id % shared.http.len()].clone(),
            shared,
            id,
            concurrency,
        }
    }

    /// A random membership: (organization index, member index).
    fn membership(&mut self) -> (usize, usize) {
        let organizations = self.shared.seeded.organizations.len();
        let k = self.dice.below(organizations);
        let size = if k == 0 {
            self.shared.seeded.member_count_of_big()
        } else {
            self.shared.seeded.members_per_organization
        };
        (k, self.dice.below(size))
    }

    fn check(&mut self) -> pb::PermissionCheck {
        let (k, j) = self.membership();
        pb::PermissionCheck {
            user_id: self.shared.seeded.member(k, j).to_owned(),
            organization_id: self.shared.seeded.organizations[k].to_string(),
            permission: "applications.read".into(),
            ..Default::default()
        }
    }

    /// An organization whose owner has a token, other than the big one.
    fn owned_organization(&mut self) -> usize {
        let owned = self.shared.owner_tokens.len();
        if owned <= 1 {
            0
        } else {
            1 + self.dice.below(owned - 1)
        }
    }

    /// One Connect unary call with a JSON body; true if it succeeded and
    /// its reply was read whole.
    async fn connect_json(&self, path: &str, token: &Bearer, body: serde_json::Value) -> bool {
        let Ok(token) = token.to_str() else {
            return false;
        };
        let reply = self
            .http
            .post(format!("{}{path}", self.shared.base))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .header("authorization", token)
            .body(body.to_string())
            .send()
            .await;
        match reply {
            Ok(reply) if reply.status().is_success() => reply.bytes().await.is_ok(),
            _ => false,
        }
    }

    async fn call(&mut self, workload: Workload) -> bool {
        self.counter += 1;
        let shared = self.shared.clone();
        match workload {
            // Measured as other workloads beside open streams, never as one call.
            Workload::IdleStreams => false,
            Workload::Health => self
                .health
                .check(HealthCheckRequest::default())
                .await
                .is_ok(),
            Workload::CheckPermission => {
                let check = self.check();
                let request = pb::CheckPermissionRequest {
                    check: Some(check),
                    at_least_revision: String::new(),
                };
                self.authz
                    .check_permission(with_auth(request, &shared.service_token))
                    .await
                    .is_ok()
            }
            Workload::CheckPermissionBySlug => {
                let (k, j) = self.membership();
                let request = pb::CheckPermissionRequest {
                    check: Some(pb::PermissionCheck {
                        user_id: shared.seeded.member(k, j).to_owned(),
                        organization_slug: super::seed::slug_of(k),
                        permission: "applications.read".into(),
                        ..Default::default()
                    }),
                    at_least_revision: String::new(),
                };
                // A member's answer names the organization: one that does
                // not (the slug did not resolve) measured the wrong path.
                self.authz
                    .check_permission(with_auth(request, &shared.service_token))
                    .await
                    .is_ok_and(|reply| {
                        reply
                            .into_inner()
                            .result
                            .is_some_and(|result| !result.organization_id.is_empty())
                    })
            }
            Workload::BatchCheck10 => {
                let checks = (0..10).map(|_| self.check()).collect();
                let request = pb::BatchCheckPermissionsRequest {
                    checks,
                    at_least_revision: String::new(),
                };
                self.authz
                    .batch_check_permissions(with_auth(request, &shared.service_token))
                    .await
                    .is_ok()
            }
            Workload::GetOrganization => {
                let k = self.dice.below(shared.owner_tokens.len());
                let request = pb::GetOrganizationRequest {
                    key: Some(Key::Id(shared.seeded.organizations[k].to_string())),
                };
                self.orgs
                    .get_organization(with_auth(request, &shared.owner_tokens[k]))
                    .await
                    .is_ok()
            }
            Workload::ListMembers => {
                let request = pb::ListMembersRequest {
                    organization_id: shared.seeded.organizations[0].to_string(),
                    page_size: 50,
                    ..Default::default()
                };
                self.members
                    .list_members(with_auth(request, &shared.owner_tokens[0]))
                    .await
                    .is_ok()
            }
            Workload::UpdateMemberRole => {
                let k = self.owned_organization();
                // Members this worker alone touches: j ≡ id (mod concurrency), never the owner.
                let per_org = shared.seeded.members_per_organization;
                let slots = (per_org.saturating_sub(1) / self.concurrency).max(1);
                let j = 1
                    + (self.id + self.concurrency * self.dice.below(slots))
                        % per_org.saturating_sub(1).max(1);
                let next = match self.roles.get(&(k, j)) {
                    Some(pb::Role::Admin) => pb::Role::Member,
                    _ => pb::Role::Admin,
                };
                let request = pb::UpdateMemberRoleRequest {
                    organization_id: shared.seeded.organizations[k].to_string(),
                    user_id: shared.seeded.member(k, j).to_owned(),
                    role: next.into(),
                };
                let ok = self
                    .members
                    .update_member_role(with_auth(request, &shared.owner_tokens[k]))
                    .await
                    .is_ok();
                if ok {
                    self.roles.insert((k, j), next);
                }
                ok
            }
            Workload::CreateOrganization => {
                let k = self.dice.below(shared.owner_tokens.len());
                let request = pb::CreateOrganizationRequest {
                    name: "Bench".into(),
                    slug: format!(
                        "new-{}-{}-{}",
                        self.id,
                        self.counter,
                        self.dice.below(1_000_000)
                    ),
                    ..Default::default()
                };
                self.orgs
                    .create_organization(with_auth(request, &shared.owner_tokens[k]))
                    .await
                    .is_ok()
            }
            Workload::LookupOrganizations => {
                let user = self.dice.below(shared.seeded.users.len());
                let request = pb::LookupOrganizationsRequest {
                    user_id: shared.seeded.users[user].clone(),
                    permission: "applications.read".into(),
                    page_size: 50,
                    ..Default::default()
                };
                self.authz
                    .lookup_organizations(with_auth(request, &shared.service_token))
                    .await
                    .is_ok()
            }
            Workload::LookupUsers => {
                let request = pb::LookupUsersRequest {
                    organization_id: shared.seeded.organizations[0].to_string(),
                    permission: "applications.read".into(),
                    page_size: 50,
                    ..Default::default()
                };
                // A page that is not full measured the wrong path.
                self.authz
                    .lookup_users(with_auth(request, &shared.service_token))
                    .await
                    .is_ok_and(|reply| reply.into_inner().users.len() == 50)
            }
            Workload::ConnectJsonCheckPermission => {
                let check = self.check();
                let body = serde_json::json!({ "check": {
                    "userId": check.user_id,
                    "organizationId": check.organization_id,
                    "permission": check.permission,
                }});
                self.connect_json(
                    "/roster.v1.AuthorizationService/CheckPermission",
                    &shared.service_token,
                    body,
                )
                .await
            }
            Workload::ConnectJsonGetOrganization => {
                let k = self.dice.below(shared.owner_tokens.len());
                let body = serde_json::json!({ "id": shared.seeded.organizations[k].to_string() });
                self.connect_json(
                    "/roster.v1.OrganizationService/GetOrganization",
                    &shared.owner_tokens[k],
                    body,
                )
                .await
            }
            Workload::CreateInvitation => {
                let k = self.owned_organization();
                let request = pb::CreateInvitationRequest {
                    organization_id: shared.seeded.organizations[k].to_string(),
                    email: format!(
                        "guest-{}-{}-{}@bench.example.com",
                        self.id,
                        self.counter,
                        self.dice.below(1_000_000)
                    ),
                    role: pb::Role::Member.into(),
                    request_id: String::new(),
                    delivery: pb::InvitationDelivery::Unspecified.into(),
                };
                self.members
                    .create_invitation(with_auth(request, &shared.owner_tokens[k]))
                    .await
                    .is_ok()
            }
        }
    }
}
