//! Operations: the [`canary_core::Registry`] methods, each an
//! authenticated request plus the checks of what came back (digests
//! announced and computed, media types, pagination).

use std::collections::BTreeSet;

use async_trait::async_trait;
use canary_core::{Digest, Error, ErrorKind, ImageRef, Manifest, Reference, Registry, Tag};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::transport::{Reply, Request};
use super::OciRegistry;
use crate::errors::{protocol_error, Call};
use crate::manifest::{self, Unusable};

/// Tags asked for per page.
const TAGS_PAGE: u32 = 1000;
/// Pages followed at most, against a server whose `Link` loops.
const MAX_PAGES: usize = 10_000;

#[derive(serde::Deserialize)]
struct TagsBody {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl OciRegistry {
    pub(super) fn manifest_url(base: &Url, image: &ImageRef, reference: &str) -> Url {
        base.join(&format!("v2/{}/manifests/{reference}", image.path()))
            .expect("validated path")
    }

    /// A GET or HEAD of a manifest, accepting every manifest type.
    pub(super) fn manifest_read<'a>(
        call: Call,
        method: Method,
        base: &Url,
        image: &'a ImageRef,
        reference: &Reference,
    ) -> Request<'a> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        Request {
            call,
            method,
            url: Self::manifest_url(base, image, &reference.to_string()),
            headers,
            body: None,
            repository: Some(image.path()),
        }
    }

    pub(super) async fn get_inner(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Manifest, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let req = Self::manifest_read(Call::GetManifest, Method::GET, &base, image, reference);
        let reply = self.api(&host, req.clone()).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        let media_type = manifest::media_type_of(reply.header("content-type"), &reply.body)
            .map_err(|u| match u {
                Unusable::NotAManifest(p) => {
                    protocol_error("GET", reply.url.as_str(), reply.status, &host.registry, &p)
                }
                Unusable::Unsupported(p) => {
                    Error::new(ErrorKind::Invalid, format!("GET {}: {p}", reply.url))
                        .with_hint("push the image again with a current client (schema 2 or OCI)")
                }
            })?;
        let announced = announced_digest(&reply, "GET", &host.registry)?;
        if let Some(d) = &announced {
            if !d.matches(&reply.body) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "GET {}: the body hashes to {}, but Docker-Content-Digest says {d}",
                        reply.url,
                        d.compute_like(&reply.body)
                    ),
                ));
            }
        }
        if let Reference::Digest(wanted) = reference {
            if !wanted.matches(&reply.body) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "GET {}: the body hashes to {}, not the requested {wanted}",
                        reply.url,
                        wanted.compute_like(&reply.body)
                    ),
                ));
            }
        }
        let digest = match (announced, reference) {
            (Some(d), _) => d,
            (None, Reference::Digest(d)) => d.clone(),
            (None, Reference::Tag(_)) => Digest::sha256_of(&reply.body),
        };
        Ok(Manifest::with_digest(media_type, reply.body, digest))
    }

    async fn head_inner(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let req = Self::manifest_read(Call::HeadManifest, Method::HEAD, &base, image, reference);
        let reply = self.api(&host, req.clone()).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        let Some(d) = announced_digest(&reply, "HEAD", &host.registry)? else {
            // Some registries omit the header on HEAD: read the bytes and
            // hash them rather than trust anything else.
            tracing::debug!(url = %reply.url, "HEAD without Docker-Content-Digest; falling back to GET");
            return match self.get_inner(image, reference).await {
                Ok(m) => Ok(Some(m.digest().clone())),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
        };
        if let Reference::Digest(wanted) = reference {
            if d.algorithm() == wanted.algorithm() && &d != wanted {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "HEAD {}: Docker-Content-Digest says {d}, not the requested {wanted}",
                        reply.url
                    ),
                ));
            }
            return Ok(Some(wanted.clone()));
        }
        Ok(Some(d))
    }

    pub(super) async fn put_inner(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(manifest.media_type()).map_err(|_| {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "media type `{}` is not a valid Content-Type",
                    manifest.media_type().escape_debug()
                ),
            )
        })?;
        headers.insert(CONTENT_TYPE, content_type);
        let req = Request {
            call: Call::PutManifest,
            method: Method::PUT,
            url: Self::manifest_url(&base, image, tag.as_str()),
            headers,
            body: Some(manifest.bytes()),
            repository: Some(image.path()),
        };
        let reply = self.api(&host, req.clone()).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        if let Some(d) = announced_digest(&reply, "PUT", &host.registry)? {
            if !d.matches(manifest.bytes()) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "PUT {}: the registry reports digest {d} for the manifest {}; \
                         it did not store the exact bytes",
                        reply.url,
                        manifest.digest()
                    ),
                ));
            }
        }
        Ok(manifest.digest().clone())
    }

    async fn list_inner(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let first = base
            .join(&format!("v2/{}/tags/list?n={TAGS_PAGE}", image.path()))
            .expect("validated path");
        let mut url = first.clone();
        let mut tags = Vec::new();
        let mut seen = BTreeSet::new();
        for page in 0..MAX_PAGES {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            let req = Request {
                call: Call::ListTags,
                method: Method::GET,
                url: url.clone(),
                headers,
                body: None,
                repository: Some(image.path()),
            };
            let reply = self.api(&host, req.clone()).await?;
            if !reply.success() {
                let error = self.fail(&host, &req, &reply);
                if page == 0 && error.kind() == ErrorKind::NotFound {
                    return Ok(Vec::new());
                }
                if page == 0
                    && url == first
                    && String::from_utf8_lossy(&reply.body).contains("PAGINATION_NUMBER_INVALID")
                {
                    // A registry with a smaller page limit: let it choose.
                    url = base
                        .join(&format!("v2/{}/tags/list", image.path()))
                        .expect("validated path");
                    continue;
                }
                return Err(error);
            }
            let body: TagsBody = serde_json::from_slice(&reply.body).map_err(|_| {
                protocol_error(
                    "GET",
                    reply.url.as_str(),
                    reply.status,
                    &host.registry,
                    "the body is not a tags list",
                )
            })?;
            for t in body.tags.unwrap_or_default() {
                if let Ok(tag) = Tag::parse(&t) {
                    tags.push(tag);
                } else {
                    tracing::warn!(tag = %t.escape_debug(), "registry listed an invalid tag; skipped");
                }
            }
            seen.insert(url.to_string());
            match next_link(&reply) {
                None => return Ok(tags),
                Some(next) => {
                    let next = reply.url.join(&next).map_err(|_| {
                        protocol_error(
                            "GET",
                            reply.url.as_str(),
                            reply.status,
                            &host.registry,
                            "the Link header is not a URL",
                        )
                    })?;
                    if next.origin() != base.origin() {
                        return Err(protocol_error(
                            "GET",
                            reply.url.as_str(),
                            reply.status,
                            &host.registry,
                            &format!(
                                "the Link header points to another host ({next}); not followed"
                            ),
                        ));
                    }
                    if seen.contains(next.as_str()) {
                        return Ok(tags);
                    }
                    url = next;
                }
            }
        }
        Err(protocol_error(
            "GET",
            url.as_str(),
            200,
            &host.registry,
            "more than 10000 pages of tags",
        ))
    }
}

#[async_trait]
impl Registry for OciRegistry {
    async fn get_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Manifest, Error> {
        self.get_inner(image, reference).await
    }

    async fn head_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        self.head_inner(image, reference).await
    }

    async fn put_manifest(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        self.put_inner(image, tag, manifest).await
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.list_inner(image).await
    }
}

/// `Docker-Content-Digest`, parsed; a header that is not a digest is a
/// protocol error.
pub(super) fn announced_digest(
    reply: &Reply,
    method: &str,
    registry: &str,
) -> Result<Option<Digest>, Error> {
    match reply.header("docker-content-digest") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => Digest::parse(v.trim()).map(Some).map_err(|_| {
            protocol_error(
                method,
                reply.url.as_str(),
                reply.status,
                registry,
                &format!(
                    "Docker-Content-Digest `{}` is not a digest",
                    v.escape_debug()
                ),
            )
        }),
    }
}

/// The `rel="next"` target of a `Link` header.
pub(super) fn next_link(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            params
                .split(';')
                .any(|p| {
                    let p = p.trim().to_ascii_lowercase().replace(' ', "");
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| target.to_string())
        })
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::Url;

    use super::*;

    #[test]
    fn link_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
        );
        let reply = Reply {
            status: 200,
            headers,
            body: vec![],
            url: Url::parse("https://r.example/v2/a/tags/list?n=2").unwrap(),
            retry_after_refused: None,
        };
        assert_eq!(
            next_link(&reply).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
    }
}
