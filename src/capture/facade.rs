//! crashbox as `crashbox-api`'s backend: libraries that report through the
//! facade reach the same capture path as `crashbox::capture_error`, with
//! the facade's frames left out by its stack mark.
use std::error::Error;

use crashbox_api::{Backend, Breadcrumb as ApiBreadcrumb, Level as ApiLevel, Site};

use super::error::display_bounded;
use super::stack::StackMark;
use crate::limits;
use crate::report::{Level, ReportId};
use crate::scope::Crumb;

struct Facade;

static FACADE: Facade = Facade;

/// Installs crashbox as the facade's backend. The first backend installed in
/// a process stays (another crashbox version's, say): then this does nothing.
pub(crate) fn install() {
    let _ = crashbox_api::set_backend(&FACADE);
}

fn level(level: ApiLevel) -> Level {
    match level {
        ApiLevel::Fatal => Level::Fatal,
        ApiLevel::Error => Level::Error,
        ApiLevel::Warning => Level::Warning,
        ApiLevel::Info => Level::Info,
        ApiLevel::Debug => Level::Debug,
        // A level added to the facade later: reported, as an error.
        _ => Level::Error,
    }
}

fn api_id(id: ReportId) -> crashbox_api::ReportId {
    crashbox_api::ReportId::from_u128(id.as_u128())
}

impl Backend for Facade {
    fn capture_error(
        &self,
        error: &dyn Error,
        type_name: &'static str,
        site: Site,
    ) -> Option<crashbox_api::ReportId> {
        if !super::install::is_active() {
            return None;
        }
        super::entry::error(
            || super::error::chain_named(error, type_name),
            site.location(),
            StackMark::at(site.stack_mark()),
        )
        .map(api_id)
    }

    fn capture_message(
        &self,
        message: &str,
        level_: ApiLevel,
        site: Site,
    ) -> Option<crashbox_api::ReportId> {
        if !super::install::is_active() {
            return None;
        }
        super::entry::message(
            message,
            level(level_),
            site.location(),
            StackMark::at(site.stack_mark()),
        )
        .map(api_id)
    }

    fn add_breadcrumb(&self, breadcrumb: &ApiBreadcrumb<'_>) {
        if !super::install::is_active() {
            return;
        }
        let text = |value: &str, max: usize| display_bounded(value, max).0;
        let mut crumb = Crumb::now(
            text(breadcrumb.message, limits::MAX_BREADCRUMB_MESSAGE_BYTES),
            breadcrumb
                .category
                .map(|category| text(category, limits::MAX_NAME_BYTES).into()),
            level(breadcrumb.level),
        );
        crumb.data = breadcrumb
            .data
            .iter()
            .take(limits::MAX_PARTS)
            .map(|(key, value)| {
                let key = text(key, limits::MAX_TAG_KEY_BYTES);
                (key.into(), text(value, limits::MAX_EXTRA_BYTES).into())
            })
            .collect();
        crate::scope::add_crumb(crumb);
    }

    fn set_tag(&self, key: &str, value: &str) {
        crate::scope::with_current_hub(|hub| hub.configure(|scope| scope.set_tag(key, value)));
    }
}
