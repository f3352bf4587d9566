//! The ledger commands of [`Gate`]: `repair`, `history`, `rollback
//! --previous`, `verify-record`. Each validates its input before any
//! request, like every command.

use canary_core::ledger::{newest_first, Ledger as _, RecordKind, RepairDirection};
use canary_core::status::{History, RecordCheck, RecordSummary};
use canary_core::{
    Command, Digest, ImageRef, Outcome, PromotionReport, Reference, StaticFleet, Tag, UsageError,
};
use canary_ledger::VerifyingKey;

use crate::gate::Gate;

impl Gate {
    fn promoted_tag(&self) -> Result<Tag, UsageError> {
        let promoted = &self.settings().promoted.value;
        if promoted.has_sha() {
            return Err(UsageError::new(
                format!("promoted tag template `{promoted}`"),
                "contains `{sha}`, so there is no single promoted tag to read",
                "use a fixed promoted tag such as `latest`",
            ));
        }
        Tag::parse(&promoted.to_string())
    }

    fn ledger_on(&self) -> Result<(), UsageError> {
        if self.settings().ledger.enabled.value {
            Ok(())
        } else {
            Err(UsageError::new(
                format!("ledger ({})", self.settings().ledger.enabled.source),
                "is disabled, and this command reads it",
                "enable it: `[ledger] enabled = true` (the default)",
            ))
        }
    }

    /// `canary repair [--forward]`: settles a run that announced a move and
    /// never recorded its end (undo by default).
    pub async fn repair(&self, forward: bool) -> Result<PromotionReport, UsageError> {
        self.ledger_on()?;
        let notifier = self.notifier()?;
        let images = self.settings().images()?.to_vec();
        let promoted = self.promoted_tag()?;
        let promoter = self.promoter_for(&images, StaticFleet::default()).await?;
        let direction = if forward {
            RepairDirection::Forward
        } else {
            RepairDirection::Undo
        };
        let report = promoter.repair(&images, &promoted, direction).await;
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary history [--image IMG] [--limit N]`: the ledger of one image
    /// (the release's first by default), newest first.
    pub async fn history(&self, image: Option<&str>, limit: usize) -> Result<History, UsageError> {
        self.ledger_on()?;
        let image = self.image_arg(image)?;
        let promoted = self.promoted_tag()?;
        let promoter = self
            .promoter_for(std::slice::from_ref(&image), StaticFleet::default())
            .await?;
        let (records, error) = match promoter.history(&image, &promoted, limit).await {
            Ok(chain) => (chain.iter().map(RecordSummary::from).collect(), None),
            Err(e) => (Vec::new(), Some(e.chain())),
        };
        Ok(History {
            image,
            records,
            error,
        })
    }

    /// `canary rollback --previous`: back to the last release the ledger
    /// says was verified and promoted before the current one.
    pub async fn rollback_previous(&self) -> Result<PromotionReport, UsageError> {
        self.ledger_on()?;
        let images = self.settings().images()?.to_vec();
        let promoted = self.promoted_tag()?;
        let promoter = self.promoter_for(&images, StaticFleet::default()).await?;
        match promoter.previous_release(&images[0], &promoted).await {
            Ok(sha) => self.rollback(sha.as_str()).await,
            Err(e) => {
                let mut report = PromotionReport::new(Command::Rollback, None);
                report.set_outcome(
                    Outcome::Failed,
                    format!("rollback --previous found nowhere to go: {}", e.chain()),
                );
                report.error = Some((&e).into());
                Ok(report)
            }
        }
    }

    /// `canary verify-record --image IMG[@DIGEST]`: checks the signature of
    /// the newest outcome record attached to the digest (the promoted tag's
    /// when none is given) with the configured public key.
    pub async fn verify_record(&self, image: &str) -> Result<RecordCheck, UsageError> {
        self.ledger_on()?;
        let (image, digest) = match image.split_once('@') {
            Some((name, digest)) => (
                self.image_arg(Some(name))?,
                Some(Digest::parse(digest).map_err(|e| self.respell("image", &e))?),
            ),
            None => (self.image_arg(Some(image))?, None),
        };
        let key = self.public_key()?;
        let promoted = self.promoted_tag()?;
        let promoter = self
            .promoter_for(std::slice::from_ref(&image), StaticFleet::default())
            .await?;
        let registry = std::sync::Arc::new(self.registry()?);
        let ledger = self
            .ledger(&registry)?
            .expect("the ledger is enabled (checked above)");
        let mut check = RecordCheck {
            image: image.clone(),
            subject: digest.clone(),
            record: None,
            valid: false,
            reason: String::new(),
            error: None,
        };
        let subject = match digest {
            Some(d) => d,
            None => match promoter
                .registry()
                .head_manifest(&image, &Reference::Tag(promoted.clone()))
                .await
            {
                Ok(Some(d)) => d,
                Ok(None) => {
                    check.reason = format!("{image}:{promoted} does not exist");
                    return Ok(check);
                }
                Err(e) => {
                    check.error = Some(e.chain());
                    return Ok(check);
                }
            },
        };
        check.subject = Some(subject.clone());
        let mut attached = match ledger.attached(&image, &subject).await {
            Ok(a) => a,
            Err(e) => {
                check.error = Some(e.chain());
                return Ok(check);
            }
        };
        newest_first(&mut attached);
        let Some(stored) = attached
            .iter()
            .find(|s| s.record.kind == RecordKind::Outcome)
            .or(attached.first())
        else {
            check.reason = format!("no canary record is attached to {image}@{subject}");
            return Ok(check);
        };
        check.record = Some(RecordSummary::from(stored));
        match canary_ledger::verify_record(&registry, &image, &stored.id, &key).await {
            Ok(Ok(verified)) => {
                check.valid = true;
                check.reason = format!(
                    "signature verified with {} key {}",
                    key.algorithm().as_str(),
                    verified.key_id
                );
            }
            Ok(Err(invalid)) => check.reason = invalid.to_string(),
            Err(e) => check.error = Some(e.chain()),
        }
        Ok(check)
    }

    fn public_key(&self) -> Result<VerifyingKey, UsageError> {
        let Some(path) = &self.settings().ledger.public_key_file.value else {
            return Err(UsageError::new(
                self.spelled("public_key"),
                "is missing",
                format!(
                    "give the public key that verifies the records: {} FILE or `[ledger] public_key_file` (`openssl pkey -in key.pem -pubout` writes it)",
                    self.spelled("public_key")
                ),
            ));
        };
        let pem = std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(
                format!("public key file `{}`", path.display()),
                format!("cannot be read ({})", e.kind()),
                "give a PEM public key",
            )
        })?;
        VerifyingKey::from_public_key_pem(&pem, &format!("public key file `{}`", path.display()))
    }

    /// `image` parsed, or the release's first image.
    fn image_arg(&self, image: Option<&str>) -> Result<ImageRef, UsageError> {
        match image {
            Some(name) => ImageRef::parse(name.trim()).map_err(|e| self.respell("image", &e)),
            None => Ok(self.settings().images()?[0].clone()),
        }
    }
}
