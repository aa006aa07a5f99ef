//! Logos as the portal stores them: https URLs in their normalised form,
//! and uploaded images as data URLs, verified, bounded and re-encoded.
//! Every refusal is INVALID_ARGUMENT naming the field, and changes nothing.

use std::io::Cursor;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use roster::pb;
use tonic::Status;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_invalid},
};

backend_tests!(
    every_image_type_is_accepted_and_re_encoded,
    png_metadata_and_appended_bytes_are_dropped,
    jpeg_comments_are_dropped,
    broken_bombed_svg_mismatched_oversized_and_malformed_images_are_refused,
    refused_logos_change_nothing_on_update,
    https_logo_urls_are_stored_normalised,
    unsafe_https_logo_urls_are_refused,
    lists_carry_logo_images_only_when_asked,
    include_logos_caps_the_page_at_10,
    the_change_log_names_an_image_without_its_bytes,
);

// ---- Images -------------------------------------------------------------

/// A 256 × 256 image with some colour and transparency, so re-encoding has
/// something to keep.
fn picture() -> DynamicImage {
    let mut image = RgbaImage::new(256, 256);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let alpha = if x < 16 { 0 } else { 255 };
        *pixel = Rgba([(x % 256) as u8, (y % 256) as u8, 128, alpha]);
    }
    DynamicImage::ImageRgba8(image)
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let image = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8()),
        _ => image.clone(),
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn data_url(media_type: &str, bytes: &[u8]) -> String {
    format!("data:{media_type};base64,{}", STANDARD.encode(bytes))
}

/// The bytes of a `data:` URL roster answered with, and its media type.
fn data_url_bytes(url: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("data:").expect("a data URL");
    let (media_type, payload) = rest.split_once(";base64,").expect("base64");
    (media_type.to_owned(), STANDARD.decode(payload).unwrap())
}

/// The PNG CRC-32 (ISO 3309) of a chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    chunk
}

/// `png` with `chunks` inserted right after its IHDR chunk.
fn png_with_chunks(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    // Signature (8) + IHDR (4 length + 4 type + 13 data + 4 CRC).
    let split = 8 + 25;
    let mut out = png[..split].to_vec();
    for chunk in chunks {
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&png[split..]);
    out
}

/// A small, valid PNG whose header claims `width` × `height`: an image
/// bomb that would need gigabytes once decoded.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = encoded(
        &DynamicImage::ImageLuma8(image::GrayImage::new(1, 1)),
        ImageFormat::Png,
    );
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&png[24..29]);
    png[16..29].copy_from_slice(&ihdr[4..]);
    png[29..33].copy_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn create(slug: &str, logo_url: &str) -> pb::CreateOrganizationRequest {
    pb::CreateOrganizationRequest {
        name: format!("Org {slug}"),
        slug: slug.to_owned(),
        logo_url: logo_url.to_owned(),
        request_id: String::new(),
        owner: None,
    }
}

/// The description of the one bad field of a refused call.
fn violation(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|bad| bad.field_violations.into_iter().next())
        .map(|v| v.description)
        .unwrap_or_default()
}

/// Creates an organization with `logo_url` and returns the logo as
/// GetOrganization answers it.
async fn logo_after_create(app: &TestApp, slug: &str, logo_url: &str) -> pb::Organization {
    let created = app
        .orgs("alice")
        .create_organization(create(slug, logo_url))
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    let read = get(app, &created.id).await;
    assert_eq!(
        created.logo_url, read.logo_url,
        "create replies as get reads"
    );
    read
}

async fn get(app: &TestApp, id: &str) -> pb::Organization {
    app.orgs("alice")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(id.to_owned())),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
}

/// Asserts that creating with `logo_url` is refused on `logo_url` with a
/// description containing `says`, and that nothing was created.
async fn assert_refused(app: &TestApp, logo_url: &str, says: &str) {
    let result = app
        .orgs("alice")
        .create_organization(create("refused", logo_url))
        .await;
    let status = result.as_ref().err().cloned();
    assert_invalid(result, "logo_url");
    let description = violation(&status.unwrap());
    assert!(
        description.contains(says),
        "{description:?} should say {says:?} (for {:.80})",
        logo_url
    );
    let listed = app
        .orgs("alice")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .organizations
            .iter()
            .all(|o| o.organization.as_ref().unwrap().slug != "refused"),
        "nothing was created"
    );
}

async fn every_image_type_is_accepted_and_re_encoded(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    for (format, media_type) in [
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::WebP, "image/webp"),
        (ImageFormat::Gif, "image/gif"),
    ] {
        let original = encoded(&picture(), format);
        let slug = format!("logo-{}", media_type.trim_start_matches("image/"));
        let org = logo_after_create(&app, &slug, &data_url(media_type, &original)).await;
        assert!(org.has_logo);
        let (answered_type, bytes) = data_url_bytes(&org.logo_url);
        assert_eq!(answered_type, media_type);
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{media_type}");
        let decoded = image::load_from_memory_with_format(&bytes, format).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (256, 256),
            "{media_type}"
        );
    }
    // Media types are case-insensitive, as RFC 2045 has them.
    let org = logo_after_create(
        &app,
        "upper-case",
        &data_url("IMAGE/PNG", &encoded(&picture(), ImageFormat::Png)),
    )
    .await;
    assert!(org.logo_url.starts_with("data:image/png;base64,"));
}

async fn png_metadata_and_appended_bytes_are_dropped(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let png = encoded(&picture(), ImageFormat::Png);
    let marked = png_with_chunks(
        &png,
        &[
            png_chunk(b"tEXt", b"Comment\0secret-text-chunk"),
            png_chunk(b"eXIf", b"MM\0*\0\0\0\x08secret-exif-chunk"),
        ],
    );
    // The marked PNG is a valid PNG, with its metadata.
    assert!(image::load_from_memory(&marked).is_ok());
    assert!(contains(&marked, b"secret-text-chunk"));
    let org = logo_after_create(&app, "metadata", &data_url("image/png", &marked)).await;
    let (_, bytes) = data_url_bytes(&org.logo_url);
    assert!(!contains(&bytes, b"tEXt") && !contains(&bytes, b"secret-text-chunk"));
    assert!(!contains(&bytes, b"eXIf") && !contains(&bytes, b"secret-exif-chunk"));

    // Bytes after IEND (a polyglot's payload) are dropped too: the image
    // is accepted and stored as its pixels alone.
    let mut appended = png.clone();
    appended.extend_from_slice(b"<script>alert(1)</script>");
    let org = logo_after_create(&app, "appended", &data_url("image/png", &appended)).await;
    let (_, bytes) = data_url_bytes(&org.logo_url);
    assert!(!contains(&bytes, b"<script>"));
    assert!(bytes.ends_with(&png_chunk(b"IEND", b"")), "ends at IEND");
}

async fn jpeg_comments_are_dropped(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let jpeg = encoded(&picture(), ImageFormat::Jpeg);
    // A COM segment right after SOI.
    let comment = b"secret-jpeg-comment";
    let mut marked = jpeg[..2].to_vec();
    marked.extend_from_slice(&[0xff, 0xfe]);
    marked.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    marked.extend_from_slice(comment);
    marked.extend_from_slice(&jpeg[2..]);
    assert!(image::load_from_memory(&marked).is_ok());
    let org = logo_after_create(&app, "jpeg-comment", &data_url("image/jpeg", &marked)).await;
    let (_, bytes) = data_url_bytes(&org.logo_url);
    assert!(!contains(&bytes, comment));
}

async fn broken_bombed_svg_mismatched_oversized_and_malformed_images_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let png = encoded(&picture(), ImageFormat::Png);
    let truncated = &png[..png.len() / 2];
    assert_refused(
        &app,
        &data_url("image/png", truncated),
        "is not a readable image/png image",
    )
    .await;
    // Huge dimensions in a tiny file: refused from the header.
    let bomb = png_bomb(100_000, 100_000);
    assert!(bomb.len() < 100, "a tiny file");
    assert_refused(&app, &data_url("image/png", &bomb), "not a readable").await;
    // A real image past the dimension bound (that compresses to little).
    let wide = encoded(
        &DynamicImage::ImageLuma8(image::GrayImage::new(2000, 2000)),
        ImageFormat::Png,
    );
    assert!(wide.len() < 256 * 1024);
    assert_refused(&app, &data_url("image/png", &wide), "not a readable").await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    assert_refused(&app, &data_url("image/svg+xml", svg), "SVG").await;
    assert_refused(
        &app,
        "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
        "SVG",
    )
    .await;
    // The bytes must be what the media type says.
    assert_refused(
        &app,
        &data_url("image/jpeg", &png),
        "is declared image/jpeg but does not hold a JPEG image",
    )
    .await;
    assert_refused(
        &app,
        &data_url("image/png", svg),
        "does not hold a PNG image",
    )
    .await;
    // Other types, and other encodings.
    assert_refused(&app, &data_url("image/bmp", &png), "data:image/png").await;
    assert_refused(&app, &data_url("text/html", b"<b>x</b>"), "data:image/png").await;
    assert_refused(&app, "data:image/png,rawbytes", "data:image/png").await;
    // Over 256 KiB (decoded), however it is padded.
    let mut oversized = png.clone();
    oversized.resize(256 * 1024 + 1, 0);
    assert_refused(&app, &data_url("image/png", &oversized), "256 KiB").await;
    assert_refused(
        &app,
        &format!("data:image/png;base64,{}", "A".repeat(1_000_000)),
        "256 KiB",
    )
    .await;
    assert_refused(
        &app,
        "data:image/png;base64,iVBORw0KGgo*not base64*",
        "is not valid base64",
    )
    .await;
}

async fn refused_logos_change_nothing_on_update(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let png = encoded(&picture(), ImageFormat::Png);
    let before = logo_after_create(&app, "keeps-logo", &data_url("image/png", &png)).await;
    for bad in [
        data_url("image/png", &png[..png.len() / 2]),
        data_url("image/png", &png_bomb(50_000, 50_000)),
        data_url("image/svg+xml", b"<svg/>"),
        "https://user:secret@cdn.example.com/x.png".to_owned(),
        "https://cdn.example.com/x.png\r\nSet-Cookie: a=b".to_owned(),
    ] {
        let result = app
            .update_org(
                "alice",
                pb::Organization {
                    id: before.id.clone(),
                    logo_url: bad,
                    ..Default::default()
                },
                &["logo_url"],
            )
            .await;
        assert_invalid(result, "organization.logo_url");
        let after = get(&app, &before.id).await;
        assert_eq!(after.logo_url, before.logo_url, "the logo is unchanged");
        assert_eq!(after.etag, before.etag, "nothing was written");
    }
    // A good update replaces the image with a URL, and back.
    let updated = app
        .update_org(
            "alice",
            pb::Organization {
                id: before.id.clone(),
                logo_url: "https://cdn.example.com/new.png".into(),
                ..Default::default()
            },
            &["logo_url"],
        )
        .await
        .unwrap();
    assert_eq!(updated.logo_url, "https://cdn.example.com/new.png");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organization_logos")
            .await,
        0,
        "the replaced image is gone"
    );
    let gif = encoded(&picture(), ImageFormat::Gif);
    let updated = app
        .update_org(
            "alice",
            pb::Organization {
                id: before.id.clone(),
                logo_url: data_url("image/gif", &gif),
                ..Default::default()
            },
            &["logo_url"],
        )
        .await
        .unwrap();
    assert!(updated.logo_url.starts_with("data:image/gif;base64,"));
    assert_eq!(get(&app, &before.id).await.logo_url, updated.logo_url);
    // Renaming alone keeps the image, and answers with it.
    let renamed = app
        .update_org(
            "alice",
            pb::Organization {
                id: before.id.clone(),
                name: "Renamed".into(),
                ..Default::default()
            },
            &["name"],
        )
        .await
        .unwrap();
    assert_eq!(renamed.logo_url, updated.logo_url);
}

// ---- https URLs ---------------------------------------------------------

async fn https_logo_urls_are_stored_normalised(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    for (given, stored) in [
        (
            "HTTPS://CDN.Example.COM:443/logos/../a.png",
            "https://cdn.example.com/a.png",
        ),
        (
            "https://cdn.example.com/a b.png?x=1",
            "https://cdn.example.com/a%20b.png?x=1",
        ),
        // Quotes and markup are percent-encoded, never stored verbatim.
        (
            r#"https://cdn.example.com/"onerror="alert(1).png"#,
            "https://cdn.example.com/%22onerror=%22alert(1).png",
        ),
        (
            "https://cdn.example.com/<script>alert('x')</script>.png",
            "https://cdn.example.com/%3Cscript%3Ealert(%27x%27)%3C/script%3E.png",
        ),
        (
            "https://cdn.example.com/a.png?q=\"'<>",
            "https://cdn.example.com/a.png?q=%22%27%3C%3E",
        ),
    ] {
        let slug = format!("url-{}", given.len());
        let org = logo_after_create(&app, &slug, given).await;
        assert_eq!(org.logo_url, stored, "{given}");
        assert!(org.has_logo);
        for unsafe_char in ['"', '\'', '<', '>', ' '] {
            assert!(!org.logo_url.contains(unsafe_char), "{}", org.logo_url);
        }
    }
}

async fn unsafe_https_logo_urls_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    assert_refused(
        &app,
        "https://cdn.example.com/a.png\r\nX-Injected: 1",
        "control characters",
    )
    .await;
    assert_refused(
        &app,
        "https://cdn.example.com/a\n.png",
        "control characters",
    )
    .await;
    assert_refused(
        &app,
        "https://cdn.example.com/a.png\n",
        "control characters",
    )
    .await;
    assert_refused(
        &app,
        "https://admin:hunter2@cdn.example.com/a.png",
        "user:password@",
    )
    .await;
    assert_refused(
        &app,
        "https://admin@cdn.example.com/a.png",
        "user:password@",
    )
    .await;
    assert_refused(&app, "http://cdn.example.com/a.png", "https URL").await;
    assert_refused(&app, "javascript:alert(1)", "https URL").await;
    assert_refused(&app, "//cdn.example.com/a.png", "https URL").await;
    let long = format!("https://cdn.example.com/{}", "l".repeat(2048));
    assert_refused(&app, &long, "2048 characters").await;
    // Within the limit as given, past it once its quotes are encoded.
    let grows = format!("https://cdn.example.com/{}", "\"".repeat(1000));
    assert_refused(&app, &grows, "once normalised").await;
}

// ---- Lists --------------------------------------------------------------

async fn lists_carry_logo_images_only_when_asked(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let png = encoded(&picture(), ImageFormat::Png);
    let image = logo_after_create(&app, "with-image", &data_url("image/png", &png)).await;
    let url = logo_after_create(&app, "with-url", "https://cdn.example.com/a.png").await;
    let none = logo_after_create(&app, "without", "").await;
    let list = |include_logos: bool| {
        let mut client = app.orgs("alice");
        async move {
            client
                .list_organizations(pb::ListOrganizationsRequest {
                    include_logos,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .organizations
                .into_iter()
                .map(|o| o.organization.unwrap())
                .map(|o| (o.slug.clone(), (o.logo_url, o.has_logo)))
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let small = list(false).await;
    assert_eq!(small["with-image"], (String::new(), true));
    assert_eq!(small["with-url"], (url.logo_url.clone(), true));
    assert_eq!(small["without"], (String::new(), false));
    let full = list(true).await;
    assert_eq!(full["with-image"], (image.logo_url.clone(), true));
    assert_eq!(full["with-url"], (url.logo_url.clone(), true));
    assert_eq!(full["without"], (none.logo_url.clone(), false));
    // The active organization is one organization: it comes with its logo.
    let active = app
        .orgs("alice")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: image.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.organization.unwrap().logo_url, image.logo_url);
    let active = app
        .orgs("alice")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.organization.unwrap().logo_url, image.logo_url);
}

async fn include_logos_caps_the_page_at_10(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |config| config.max_owned_organizations = 20).await;
    let png = encoded(&picture(), ImageFormat::Png);
    for k in 0..12 {
        app.orgs("alice")
            .create_organization(create(&format!("org-{k:02}"), &data_url("image/png", &png)))
            .await
            .unwrap();
    }
    let page = |include_logos: bool, page_size: i32, page_token: String| {
        let mut client = app.orgs("alice");
        async move {
            client
                .list_organizations(pb::ListOrganizationsRequest {
                    page_size,
                    page_token,
                    include_logos,
                    user_id: String::new(),
                    query: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    for page_size in [0, 11, 500] {
        let first = page(true, page_size, String::new()).await;
        assert_eq!(first.organizations.len(), 10, "page_size {page_size}");
        assert!(!first.next_page_token.is_empty());
        let rest = page(true, page_size, first.next_page_token).await;
        assert_eq!(rest.organizations.len(), 2);
        assert!(rest.next_page_token.is_empty());
        assert!(
            first
                .organizations
                .iter()
                .chain(&rest.organizations)
                .all(|o| o
                    .organization
                    .as_ref()
                    .unwrap()
                    .logo_url
                    .starts_with("data:image/png"))
        );
    }
    // A smaller page is honoured, and without logos the usual sizes hold.
    assert_eq!(page(true, 3, String::new()).await.organizations.len(), 3);
    assert_eq!(page(false, 0, String::new()).await.organizations.len(), 12);
}

async fn the_change_log_names_an_image_without_its_bytes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let png = encoded(&picture(), ImageFormat::Png);
    let org = logo_after_create(&app, "audited", &data_url("image/png", &png)).await;
    let events = app
        .events("alice")
        .list_audit_events(pb::ListAuditEventsRequest {
            organization_id: org.id.clone(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let created = events
        .iter()
        .find(|e| e.r#type == "organization.created")
        .unwrap();
    let logo = created
        .changes
        .iter()
        .find(|c| c.field == "logo_url")
        .unwrap();
    let (_, stored) = data_url_bytes(&org.logo_url);
    let digest = {
        use sha2::Digest as _;
        format!("{:x}", sha2::Sha256::digest(&stored))
    };
    assert_eq!(logo.new_value, format!("image/png;sha256={digest}"));
    // No event payload holds logo bytes.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM events WHERE length(data) > 4096")
            .await,
        0
    );
}
