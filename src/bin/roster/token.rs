//! `roster token`: prints a development token signed with the HS256 secret
//! in effect, for grpcurl and scripts.

use std::process::ExitCode;

use roster::auth::token::{TokenRequest, mint_hs256, parse_scopes};

use crate::cli::TokenArgs;

pub fn run(args: TokenArgs) -> ExitCode {
    let Some(secret) = args.jwt.effective_secret() else {
        eprintln!(
            "roster token: no HS256 secret configured (tokens for JWKS setups come from your identity provider)"
        );
        return ExitCode::from(2);
    };
    let request = TokenRequest {
        sub: args.sub,
        email: args.email,
        name: args.name,
        email_verified: !args.unverified,
        scopes: parse_scopes(&args.scopes),
        organizations: parse_scopes(&args.organizations),
        issuer: args.jwt.jwt_issuer.clone(),
        audience: args.jwt.jwt_audience.clone(),
        acting_party: args.act,
        ttl: args.ttl,
    };
    match mint_hs256(secret, &request) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("roster token: {err}");
            ExitCode::FAILURE
        }
    }
}
