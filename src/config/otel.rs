//! Traces over OTLP, configured by the standard OpenTelemetry variables
//! (or the flags of the same name): off unless an endpoint is set.

use clap::Args;

use super::{ConfigError, defaults};
use crate::telemetry::OtlpExport;

/// Where roster's spans go. Other standard variables the exporter reads
/// itself: `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
/// `OTEL_BSP_*` (batching), `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct OtelConfig {
    /// The OTLP/gRPC endpoint of the collector that receives roster's spans,
    /// e.g. `http://localhost:4317`; no traces are exported when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The endpoint for traces alone; wins over `--otlp-endpoint`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otlp_traces_endpoint: Option<String>,
    /// `grpc`, the one protocol roster exports with (set or not).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// The protocol for traces alone; `grpc` too.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")]
    pub otlp_traces_protocol: Option<String>,
    /// `service.name` of the exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = defaults::OTEL_SERVICE_NAME)]
    pub otel_service_name: String,
    /// Export nothing, even with an endpoint set.
    #[arg(long, env = "OTEL_SDK_DISABLED")]
    pub otel_sdk_disabled: bool,
}

impl OtelConfig {
    /// What to export to, checked; `None`: traces are off.
    pub(super) fn export(&self) -> Result<Option<OtlpExport>, ConfigError> {
        let (variable, endpoint) = match (&self.otlp_traces_endpoint, &self.otlp_endpoint) {
            (Some(endpoint), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            (None, Some(endpoint)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            (None, None) => return Ok(None),
        };
        let endpoint = endpoint.trim();
        if self.otel_sdk_disabled || endpoint.is_empty() {
            return Ok(None);
        }
        let protocol = self
            .otlp_traces_protocol
            .as_ref()
            .map(|protocol| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol))
            .or_else(|| {
                let protocol = self.otlp_protocol.as_ref()?;
                Some(("OTEL_EXPORTER_OTLP_PROTOCOL", protocol))
            });
        if let Some((name, protocol)) = protocol
            && protocol.trim() != "grpc"
        {
            return Err(ConfigError(format!(
                "{name}={protocol:?}: roster exports traces over OTLP/gRPC only; \
                 set it to grpc (or unset it) and point {variable} at the collector's \
                 gRPC port (4317 by default)"
            )));
        }
        let url = url::Url::parse(endpoint)
            .map_err(|err| ConfigError(format!("{variable}={endpoint:?} is not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError(format!(
                "{variable}={endpoint:?} must be an http or https URL with a host, \
                 e.g. http://localhost:4317"
            )));
        }
        Ok(Some(OtlpExport {
            endpoint: endpoint.to_owned(),
            service_name: self.otel_service_name.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn otel(args: &[&str]) -> OtelConfig {
        Config::parse_args(args).unwrap().otel
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(otel(&[]).export(), Ok(None));
        assert_eq!(
            otel(&[
                "--otlp-endpoint",
                "http://localhost:4317",
                "--otel-sdk-disabled"
            ])
            .export(),
            Ok(None)
        );
        let export = otel(&["--otlp-endpoint", "http://localhost:4317"])
            .export()
            .unwrap()
            .unwrap();
        assert_eq!(export.endpoint, "http://localhost:4317");
        assert_eq!(export.service_name, "roster");
    }

    #[test]
    fn the_traces_endpoint_wins() {
        let export = otel(&[
            "--otlp-endpoint",
            "http://a:4317",
            "--otlp-traces-endpoint",
            "http://b:4317",
            "--otel-service-name",
            "roster-eu",
        ])
        .export()
        .unwrap()
        .unwrap();
        assert_eq!(export.endpoint, "http://b:4317");
        assert_eq!(export.service_name, "roster-eu");
    }

    #[test]
    fn what_cannot_work_is_refused_naming_the_variable() {
        for (args, why) in [
            (
                &["--otlp-endpoint", "localhost:4317"][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &["--otlp-traces-endpoint", "not a url"][..],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                &[
                    "--otlp-endpoint",
                    "http://localhost:4318",
                    "--otlp-protocol",
                    "http/protobuf",
                ][..],
                "OTLP/gRPC only",
            ),
        ] {
            let error = otel(args).export().unwrap_err();
            assert!(error.0.contains(why), "{error} should mention {why}");
        }
        // `grpc`, said explicitly, is fine.
        assert!(
            otel(&[
                "--otlp-endpoint",
                "http://c:4317",
                "--otlp-protocol",
                "grpc"
            ])
            .export()
            .unwrap()
            .is_some()
        );
    }
}
