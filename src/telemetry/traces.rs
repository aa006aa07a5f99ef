//! Traces: an incoming W3C trace context (`traceparent`, `tracestate`)
//! continues the caller's trace in the RPC's span, and, when an OTLP
//! endpoint is configured, roster's spans are exported to it over OTLP/gRPC.
//!
//! The spans are tracing's own (`middleware::observe` opens one per RPC,
//! `#[instrument]` the rest), so the exported spans and the log lines are
//! the same spans and carry the same trace id. With no endpoint, nothing is
//! built or exported: an RPC only reads `traceparent` when the caller sent
//! one, to put the caller's trace id in the log lines.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use http::HeaderMap;
use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator as _},
    trace::{TraceContextExt as _, TraceId, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Where and as what roster exports its spans (see `config::otel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExport {
    /// The collector's OTLP/gRPC endpoint, e.g. `http://collector:4317`.
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
}

/// Whether spans are exported; read on every RPC, set once at start.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (so the OpenTelemetry-only span fields are
/// worth recording).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The exporting side, kept by the binary until it stops: [`Exporter::shutdown`]
/// sends the spans still buffered.
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

/// Builds the exporter for `export` and the tracing layer that feeds it.
/// Must run inside the Tokio runtime (the gRPC channel is made on it).
pub(super) fn exporter<S>(
    export: &OtlpExport,
) -> Result<(Exporter, impl tracing_subscriber::Layer<S>), String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let otlp = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&export.endpoint)
        .build()
        .map_err(|err| {
            format!(
                "cannot export traces to {} (OTEL_EXPORTER_OTLP_ENDPOINT): {err}",
                export.endpoint
            )
        })?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|err| format!("traces need the Tokio runtime: {err}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(OnRuntime {
            inner: Arc::new(otlp),
            runtime,
        })
        .with_resource(
            Resource::builder()
                .with_service_name(export.service_name.clone())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("roster"))
        .with_threads(false)
        .with_tracked_inactivity(false);
    EXPORTING.store(true, Ordering::Relaxed);
    Ok((Exporter { provider }, layer))
}

impl Exporter {
    /// Exports what is buffered and stops; blocks, so it runs off the
    /// runtime's threads.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let outcome = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(err)) = outcome {
            tracing::warn!(error = %err, "traces: the last spans may not have been exported");
        }
    }
}

/// The OTLP exporter, run on the server's Tokio runtime. The SDK's batch
/// processor exports from a thread of its own with a plain executor, on
/// which tonic's channel and the exporter's retry timer find no reactor.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: tokio::runtime::Handle,
}

impl SpanExporter for OnRuntime {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = self.inner.clone();
        self.runtime
            .spawn(async move { inner.export(batch).await })
            .await
            .map_err(|err| OTelSdkError::InternalFailure(err.to_string()))?
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before any export shares it.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// The request headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's trace context, if its `traceparent` is valid.
fn caller_context(headers: &HeaderMap) -> Option<Context> {
    headers.get("traceparent")?;
    let context = TraceContextPropagator::new().extract(&Headers(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` (an RPC's, not yet entered) continue the caller's trace,
/// and returns the trace id it belongs to: the caller's, or, when
/// exporting, the new trace's. `None` when there is neither.
pub fn continue_trace(span: &Span, headers: &HeaderMap) -> Option<TraceId> {
    let caller = caller_context(headers);
    if !exporting() {
        return caller.map(|context| context.span().span_context().trace_id());
    }
    if let Some(context) = caller {
        // Fails only for a span that is disabled or already started; the
        // span then simply starts a trace of its own.
        let _ = span.set_parent(context);
    }
    let trace_id = span.context().span().span_context().trace_id();
    (trace_id != TraceId::INVALID).then_some(trace_id)
}
