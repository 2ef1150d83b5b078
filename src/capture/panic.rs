//! The panic hook: a `fatal` report of kind `panic`, then the previous hook.
use std::any::Any;
use std::panic::PanicHookInfo;
use std::sync::Once;

use crate::capture;
use crate::capture::stack::{self, StackMark, Top};
use crate::reentry::Reentry;
use crate::report::{ExceptionInfo, Kind, Level, Location};

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

static INSTALL: Once = Once::new();

/// Installs crashbox's hook in front of the current one, once per process.
/// The hook forwards to the previous hook in every case, except for panics
/// raised inside crashbox itself (a user's `Display` impl, say), which crashbox
/// catches and reports in place.
pub(crate) fn install() {
    if std::thread::panicking() {
        // `take_hook` would panic on a panicking thread; try again next init.
        return;
    }
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let anchor = 0u8;
            let mark = StackMark::new(&anchor);
            if stack::calibration_panic(mark) {
                return;
            }
            if Reentry::active() {
                return;
            }
            if crate::capture::install::is_active() {
                capture_panic(info, mark);
            }
            previous(info);
        }));
        // Now that crashbox's hook is the current one, it can swallow the
        // panics that teach it std's panic machinery.
        stack::calibrate();
    });
}

fn capture_panic(info: &PanicHookInfo<'_>, mark: StackMark) {
    capture::run(|target| {
        let mut message = payload_text(info.payload());
        let mut truncated = Vec::new();
        if crate::limits::truncate(&mut message, crate::limits::MAX_MESSAGE_BYTES) {
            truncated.push("message".to_owned());
        }
        let mut exception_message = message.clone();
        crate::limits::truncate(
            &mut exception_message,
            crate::limits::MAX_EXCEPTION_MESSAGE_BYTES,
        );
        let exceptions = vec![ExceptionInfo {
            ty: "panic".to_owned(),
            message: exception_message,
        }];
        let location = info.location().map(Location::from_std);
        let pending = capture::pending(
            Level::Fatal,
            Kind::Panic,
            message,
            exceptions,
            location,
            truncated,
            mark,
            Top::Panic,
        );
        target.submit(pending)
    });
}
