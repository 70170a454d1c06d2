//! The multipart body of a track upload, streamed from disk.
//!
//! A streamed body cannot be replayed, so the form is rebuilt, and the files
//! re-opened, for every attempt. The audio part carries its length, so the
//! request has a Content-Length and memory use does not grow with the file.

use std::path::{Path, PathBuf};

use reqwest::Body;
use reqwest::multipart::{Form, Part};
use tokio_util::io::ReaderStream;

use super::ApiError;
use super::models::{field_to_form, wire_name};
use crate::model::Fields;

/// Bytes read from disk per chunk of the upload stream.
const UPLOAD_CHUNK: usize = 64 * 1024;

pub(crate) struct TrackUpload {
    file: PathBuf,
    artwork: Option<PathBuf>,
    /// `track[...]` text fields, already in wire form.
    fields: Vec<(String, String)>,
}

impl TrackUpload {
    /// Checks that the files are readable before anything is sent.
    pub(crate) async fn new(
        file: &Path,
        artwork: Option<&Path>,
        fields: &Fields,
    ) -> Result<TrackUpload, ApiError> {
        for path in std::iter::once(file).chain(artwork) {
            tokio::fs::File::open(path)
                .await
                .map_err(|source| file_error(path, source))?;
        }
        Ok(TrackUpload {
            file: file.to_owned(),
            artwork: artwork.map(Path::to_owned),
            fields: fields
                .iter()
                .map(|(name, value)| (format!("track[{}]", wire_name(name)), field_to_form(value)))
                .collect(),
        })
    }

    /// A fresh form for one attempt.
    pub(crate) async fn form(&self) -> Result<Form, ApiError> {
        let mut form = Form::new();
        for (name, value) in &self.fields {
            form = form.text(name.clone(), value.clone());
        }
        form = form.part(
            "track[asset_data]",
            file_part(&self.file, audio_mime(&self.file)).await?,
        );
        if let Some(artwork) = &self.artwork {
            form = form.part(
                "track[artwork_data]",
                file_part(artwork, image_mime(artwork)).await?,
            );
        }
        Ok(form)
    }
}

async fn file_part(path: &Path, mime: &str) -> Result<Part, ApiError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| file_error(path, source))?;
    let length = file
        .metadata()
        .await
        .map_err(|source| file_error(path, source))?
        .len();
    let body = Body::wrap_stream(ReaderStream::with_capacity(file, UPLOAD_CHUNK));
    Part::stream_with_length(body, length)
        .file_name(ascii_file_name(path))
        .mime_str(mime)
        .map_err(|e| ApiError::Config {
            detail: format!("bad content type {mime}: {e}"),
        })
}

fn file_error(path: &Path, source: std::io::Error) -> ApiError {
    ApiError::File {
        path: path.to_owned(),
        source,
    }
}

/// The file name sent with a part. Non-ASCII names have made uploads fail
/// with a 500, so anything outside printable ASCII becomes `_`.
fn ascii_file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "upload".to_owned()
    } else {
        clean
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn audio_mime(path: &Path) -> &'static str {
    match extension(path).as_str() {
        "wav" | "wave" => "audio/wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "aif" | "aiff" | "aifc" => "audio/aiff",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "mp2" => "audio/mpeg",
        "amr" => "audio/amr",
        "wma" => "audio/x-ms-wma",
        _ => "application/octet-stream",
    }
}

fn image_mime(path: &Path) -> &'static str {
    match extension(path).as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldValue;

    #[test]
    fn file_names_are_made_ascii() {
        assert_eq!(
            ascii_file_name(Path::new("/a/Nacht fahrt ü.wav")),
            "Nacht_fahrt__.wav"
        );
        assert_eq!(ascii_file_name(Path::new("plain.mp3")), "plain.mp3");
    }

    #[test]
    fn mime_types_follow_the_extension() {
        assert_eq!(audio_mime(Path::new("x.WAV")), "audio/wav");
        assert_eq!(audio_mime(Path::new("x.flac")), "audio/flac");
        assert_eq!(audio_mime(Path::new("x")), "application/octet-stream");
        assert_eq!(image_mime(Path::new("a.JPG")), "image/jpeg");
    }

    #[tokio::test]
    async fn a_missing_file_fails_before_anything_is_sent() {
        let err = TrackUpload::new(Path::new("/nonexistent/x.wav"), None, &Fields::new())
            .await
            .err()
            .expect("missing file");
        assert!(matches!(err, ApiError::File { .. }));
        assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
    }

    #[tokio::test]
    async fn fields_travel_as_track_bracket_wire_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        let mut fields = Fields::new();
        fields.insert("tags".into(), FieldValue::Tags(vec!["late night".into()]));
        fields.insert("downloadable".into(), FieldValue::Bool(false));
        let upload = TrackUpload::new(&file, None, &fields).await.unwrap();
        assert_eq!(
            upload.fields,
            vec![
                ("track[downloadable]".to_owned(), "false".to_owned()),
                ("track[tag_list]".to_owned(), "\"late night\"".to_owned()),
            ]
        );
        // Two attempts build two independent forms.
        upload.form().await.unwrap();
        upload.form().await.unwrap();
    }
}
