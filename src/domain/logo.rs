//! Logos: the one place that decides what `logo_url` may hold (product.md).
//!
//! A logo is nothing, an `https` URL (stored in its parsed, normalised
//! form), or a small image as the portal uploads it, a
//! `data:image/png|jpeg|webp|gif;base64,...` URL. An image is decoded and
//! checked to be what it says it is, bounded before anything large is
//! allocated, and re-encoded, so that only pixels are kept: metadata chunks
//! (text, EXIF, ICC profiles) and any bytes appended after the image are
//! dropped. SVG and every other type are refused.

use std::{fmt, io::Cursor};

use base64::{
    Engine as _,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose},
};
use image::{
    DynamicImage, ImageReader, Limits,
    codecs::{jpeg::JpegEncoder, webp::WebPEncoder},
};
use sha2::{Digest as _, Sha256};
use strum::{EnumString, IntoStaticStr, VariantArray};
use url::{Host, Url};

use super::FieldViolation;

/// The image formats a logo may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl ImageFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }

    fn from_media_type(value: &str) -> Option<Self> {
        Self::VARIANTS
            .iter()
            .copied()
            .find(|format| format.media_type().eq_ignore_ascii_case(value))
    }

    fn codec(self) -> image::ImageFormat {
        match self {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Webp => image::ImageFormat::WebP,
            ImageFormat::Gif => image::ImageFormat::Gif,
        }
    }
}

stored_names!(ImageFormat);

/// A verified, re-encoded logo image.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoImage {
    format: ImageFormat,
    bytes: Vec<u8>,
}

impl fmt::Debug for LogoImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: they would fill every log line.
        f.debug_struct("LogoImage")
            .field("format", &self.format)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl LogoImage {
    /// An image roster verified and stored earlier.
    pub fn from_trusted(format: ImageFormat, bytes: Vec<u8>) -> Self {
        Self { format, bytes }
    }

    pub fn format(&self) -> ImageFormat {
        self.format
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The SHA-256 of the bytes, in lower-case hex: names this image in the
    /// change log without carrying it.
    pub fn digest(&self) -> String {
        format!("{:x}", Sha256::digest(&self.bytes))
    }

    /// The image as a `data:` URL, as the portal shows it.
    pub fn data_url(&self) -> String {
        format!(
            "{DATA_PREFIX}{};base64,{}",
            self.format.media_type(),
            general_purpose::STANDARD.encode(&self.bytes)
        )
    }
}

/// A logo as an organization holds it, without the image's bytes (lists,
/// the read cache and the change log carry this, never the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Logo {
    #[default]
    None,
    /// An https URL, normalised.
    Url(String),
    /// An uploaded image, named by its format and SHA-256.
    Image { format: ImageFormat, digest: String },
}

impl Logo {
    pub fn is_some(&self) -> bool {
        !matches!(self, Logo::None)
    }

    /// The https URL, or empty (no logo, or an image).
    pub fn url(&self) -> &str {
        match self {
            Logo::Url(url) => url,
            Logo::None | Logo::Image { .. } => "",
        }
    }

    /// How the change log names this logo: the URL, `image/png;sha256=<hex>`
    /// for an image (never its bytes), or empty for none.
    pub fn describe(&self) -> String {
        match self {
            Logo::None => String::new(),
            Logo::Url(url) => url.clone(),
            Logo::Image { format, digest } => format!("{};sha256={digest}", format.media_type()),
        }
    }
}

/// A `logo_url` from a request, after the input rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NewLogo {
    /// Empty: no logo.
    #[default]
    None,
    Url(String),
    Image(LogoImage),
}

const DATA_PREFIX: &str = "data:";

/// At most this many organizations per page when a list carries logo
/// images (each may be 256 KiB).
pub const MAX_PAGE_SIZE_WITH_LOGOS: u64 = 10;

impl NewLogo {
    /// Longest https URL, in characters, after normalisation.
    pub const MAX_URL_LEN: usize = 2048;
    /// Largest image, in bytes, before and after re-encoding.
    pub const MAX_IMAGE_BYTES: usize = 256 * 1024;
    /// Widest and tallest image, in pixels (the portal uploads 256 × 256).
    pub const MAX_DIMENSION: u32 = 1024;
    /// What the decoder may allocate at most: a 1024 × 1024 RGBA image of
    /// 16-bit channels, with room to spare.
    const MAX_DECODER_ALLOC: u64 = 16 * 1024 * 1024;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        // Before anything else: the url crate would silently drop CR, LF and
        // tabs, and trimming would hide a trailing newline.
        if value.chars().any(char::is_control) {
            return Err(FieldViolation::new(
                field,
                "must not contain control characters (such as CR or LF)",
            ));
        }
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::None);
        }
        let is_data = value
            .get(..DATA_PREFIX.len())
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(DATA_PREFIX));
        if is_data {
            parse_image(field, &value[DATA_PREFIX.len()..]).map(Self::Image)
        } else {
            parse_https(field, value).map(Self::Url)
        }
    }

    /// The logo an organization holds once this is stored.
    pub fn logo(&self) -> Logo {
        match self {
            NewLogo::None => Logo::None,
            NewLogo::Url(url) => Logo::Url(url.clone()),
            NewLogo::Image(image) => Logo::Image {
                format: image.format,
                digest: image.digest(),
            },
        }
    }

    pub fn image(&self) -> Option<&LogoImage> {
        match self {
            NewLogo::Image(image) => Some(image),
            NewLogo::None | NewLogo::Url(_) => None,
        }
    }
}

/// An https URL without credentials, in its normalised form. Characters
/// that could break out of an HTML attribute (quotes, `<`, `>`, spaces)
/// come back percent-encoded, never verbatim.
fn parse_https(field: &str, value: &str) -> Result<String, FieldViolation> {
    const RULE: &str = "must be an https URL of at most 2048 characters, or a \
                        data:image/png, jpeg, webp or gif URL";
    if value.chars().count() > NewLogo::MAX_URL_LEN {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 characters (an https URL)",
        ));
    }
    let url =
        Url::parse(value).map_err(|err| FieldViolation::new(field, format!("{RULE} ({err})")))?;
    if url.scheme() != "https" {
        return Err(FieldViolation::new(
            field,
            format!("{RULE} (the scheme is {:?})", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FieldViolation::new(
            field,
            format!("{RULE} (it has no host)"),
        ));
    }
    // The URL standard lets a host hold quotes, backticks, braces and the
    // like (`https:///"` has the host `"`), and the url crate keeps them
    // verbatim: a logo is fetched from a real server, so its host must be
    // a domain name (after IDNA: letters, digits, `-`, `_`, `.`) or an IP
    // address.
    if let Some(Host::Domain(domain)) = url.host()
        && !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldViolation::new(
            field,
            format!("{RULE} (its host is not a domain name or an IP address)"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldViolation::new(
            field,
            "must not contain a user name or password (user:password@)",
        ));
    }
    // The url crate percent-encodes `"`, `<`, `>` and spaces everywhere, and
    // `'` in the query, but leaves `'` in the path: encode that too, so no
    // quote of any kind is stored.
    let normalised = url.as_str().replace('\'', "%27");
    let reparsed = Url::parse(&normalised)
        .map_err(|err| FieldViolation::new(field, format!("{RULE} ({err})")))?;
    if reparsed.as_str() != normalised {
        return Err(FieldViolation::new(
            field,
            "is not a URL that survives normalisation unchanged",
        ));
    }
    if normalised.chars().count() > NewLogo::MAX_URL_LEN {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 characters once normalised (percent-encoding lengthens it)",
        ));
    }
    Ok(normalised)
}

/// `rest` is what follows `data:`: `<media type>;base64,<payload>`.
fn parse_image(field: &str, rest: &str) -> Result<LogoImage, FieldViolation> {
    const RULE: &str = "must be a data:image/png, image/jpeg, image/webp or image/gif URL \
                        in base64 (data:image/png;base64,...)";
    let (header, payload) = rest
        .split_once(',')
        .ok_or_else(|| FieldViolation::new(field, RULE))?;
    let (media_type, encoding) = header.split_once(';').unwrap_or((header, ""));
    if media_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("image/svg")
    {
        return Err(FieldViolation::new(
            field,
            "must not be an SVG image (SVG can carry scripts); use PNG, JPEG, WebP or GIF",
        ));
    }
    let format =
        ImageFormat::from_media_type(media_type).ok_or_else(|| FieldViolation::new(field, RULE))?;
    if !encoding.eq_ignore_ascii_case("base64") {
        return Err(FieldViolation::new(field, RULE));
    }
    // Refuse an oversized payload before decoding it.
    if payload.len() > NewLogo::MAX_IMAGE_BYTES.div_ceil(3) * 4 {
        return Err(too_large(field));
    }
    let bytes = BASE64
        .decode(payload)
        .map_err(|err| FieldViolation::new(field, format!("is not valid base64 ({err})")))?;
    if bytes.len() > NewLogo::MAX_IMAGE_BYTES {
        return Err(too_large(field));
    }
    let found = image::guess_format(&bytes).ok();
    if found != Some(format.codec()) {
        return Err(FieldViolation::new(
            field,
            format!(
                "is declared {} but does not hold a {} image",
                format.media_type(),
                format.as_str().to_ascii_uppercase()
            ),
        ));
    }
    let decoded = decode(&bytes, format).map_err(|err| {
        FieldViolation::new(
            field,
            format!("is not a readable {} image ({err})", format.media_type()),
        )
    })?;
    let encoded = encode(&decoded, format).map_err(|err| {
        FieldViolation::new(
            field,
            format!("cannot be re-encoded as {} ({err})", format.media_type()),
        )
    })?;
    if encoded.len() > NewLogo::MAX_IMAGE_BYTES {
        return Err(FieldViolation::new(
            field,
            "is larger than 256 KiB once re-encoded; upload a smaller image",
        ));
    }
    Ok(LogoImage {
        format,
        bytes: encoded,
    })
}

/// Standard base64, padded or not (encoders differ), nothing else.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn too_large(field: &str) -> FieldViolation {
    FieldViolation::new(field, "must hold an image of at most 256 KiB")
}

/// Decodes with the dimensions and the allocation bounded, so an image
/// bomb (a tiny file claiming huge dimensions) is refused from its header,
/// before its pixels are allocated.
fn decode(bytes: &[u8], format: ImageFormat) -> image::ImageResult<DynamicImage> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(NewLogo::MAX_DIMENSION);
    limits.max_image_height = Some(NewLogo::MAX_DIMENSION);
    limits.max_alloc = Some(NewLogo::MAX_DECODER_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.codec());
    reader.limits(limits);
    reader.decode()
}

/// Writes the pixels alone in `format` (an animated GIF keeps its first frame).
fn encode(image: &DynamicImage, format: ImageFormat) -> image::ImageResult<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Png => image.write_to(&mut out, image::ImageFormat::Png)?,
        ImageFormat::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))?;
        }
        ImageFormat::Webp => {
            let pixels = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            pixels.write_with_encoder(WebPEncoder::new_lossless(&mut out))?;
        }
        ImageFormat::Gif => {
            DynamicImage::ImageRgba8(image.to_rgba8())
                .write_to(&mut out, image::ImageFormat::Gif)?;
        }
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgba8(width, height);
        encode(&image, ImageFormat::Png).unwrap_or_default()
    }

    fn data_url(media_type: &str, bytes: &[u8]) -> String {
        format!(
            "data:{media_type};base64,{}",
            general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn https_urls_are_normalised() {
        assert_eq!(
            NewLogo::parse("logo_url", " HTTPS://CDN.Example.com/a b.png "),
            Ok(NewLogo::Url("https://cdn.example.com/a%20b.png".to_owned()))
        );
        assert_eq!(
            NewLogo::parse("logo_url", "https://x.example/\"><script>'.png"),
            Ok(NewLogo::Url(
                "https://x.example/%22%3E%3Cscript%3E%27.png".to_owned()
            ))
        );
        for bad in [
            "http://cdn.example.com/a.png",
            "javascript:alert(1)",
            "not a url",
            "https://user:pw@cdn.example.com/a.png",
            "https://user@cdn.example.com/a.png",
            "https://cdn.example.com/a.png\r\nX: y",
            "https://cdn.example.com/a.png\n",
            // Hosts the URL standard allows but no server has (found by
            // the property test: ` HTTPS:///" ` became `https://"/`).
            " HTTPS:///\" ",
            "https://a\"b.example/logo.png",
            "https://a'b.example/",
            "https://a`b{c}.example/",
        ] {
            assert!(NewLogo::parse("logo_url", bad).is_err(), "{bad:?}");
        }
        for good in [
            "https://127.0.0.1/a.png",
            "https://[::1]:8443/a.png",
            "https://bücher.example/a.png",
            "https://my_cdn.example.com/a.png",
        ] {
            assert!(NewLogo::parse("logo_url", good).is_ok(), "{good:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(NewLogo::parse("logo_url", &long).is_err());
        // Percent-encoding may lengthen a URL past the limit.
        let grows = format!("https://example.com/{}", "\"".repeat(700));
        assert!(NewLogo::parse("logo_url", &grows).is_err());
    }

    #[test]
    fn images_are_verified_and_bounded() {
        let parsed = NewLogo::parse("logo_url", &data_url("image/png", &png(256, 256)));
        assert!(
            matches!(&parsed, Ok(NewLogo::Image(image)) if image.format() == ImageFormat::Png),
            "{parsed:?}"
        );
        let declared_wrong = data_url("image/jpeg", &png(8, 8));
        assert!(NewLogo::parse("logo_url", &declared_wrong).is_err());
        let too_wide = data_url("image/png", &png(NewLogo::MAX_DIMENSION + 1, 1));
        assert!(NewLogo::parse("logo_url", &too_wide).is_err());
        assert!(NewLogo::parse("logo_url", "data:image/svg+xml;base64,PHN2Zz4=").is_err());
        assert!(NewLogo::parse("logo_url", "data:image/png;base64,%%%").is_err());
        assert!(NewLogo::parse("logo_url", "data:image/png,abc").is_err());
    }

    #[test]
    fn descriptions_never_carry_bytes() {
        let logo = NewLogo::Image(LogoImage::from_trusted(ImageFormat::Gif, vec![1, 2, 3])).logo();
        assert!(logo.describe().starts_with("image/gif;sha256="));
        assert_eq!(logo.url(), "");
        assert!(logo.is_some());
    }
}
