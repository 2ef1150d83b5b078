//! An error's origin: the frames of a backtrace captured where it was
//! created (by anyhow, or eyre's default handler), read from the text std's
//! `Backtrace` prints, the only form it gives them in.
use std::path::Path;

use crate::report::Frame;

/// The frames of `backtrace_text`, without the machinery that recorded
/// them (the toolchain's backtrace code, and the wrapper's own functions,
/// named with one of `wrapper`'s prefixes); `None` when it holds none.
pub(crate) fn frames(backtrace_text: &str, wrapper: &[&str]) -> Option<Vec<Frame>> {
    let cwd = std::env::current_dir().ok();
    let mut frames = frames_of(backtrace_text, cwd.as_deref());
    crate::pipeline::symbolicate::trim_origin(&mut frames, wrapper);
    (!frames.is_empty()).then_some(frames)
}

/// Frames from a `std::backtrace::Backtrace`'s text, the only form it gives
/// them in: `N: function` lines (an inlined function on a line of its own,
/// without the number), each followed by `at file:line:column` when known.
/// The text shortens paths under the current directory to `./…`: they get
/// `cwd` back.
pub(crate) fn frames_of(text: &str, cwd: Option<&Path>) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            let Some(frame) = frames.last_mut() else {
                continue;
            };
            let mut parts = at.rsplitn(3, ':');
            let (column, number, file) = (parts.next(), parts.next(), parts.next());
            match (file, number.and_then(|n| n.parse().ok())) {
                (Some(file), Some(number)) => {
                    frame.file = Some(match (file.strip_prefix("./"), cwd) {
                        (Some(relative), Some(cwd)) => cwd.join(relative).to_string_lossy().into(),
                        _ => file.into(),
                    });
                    frame.line = Some(number);
                    frame.column = column.and_then(|c| c.parse().ok());
                }
                _ => frame.file = Some(at.into()),
            }
            continue;
        }
        let function = match line.split_once(": ") {
            Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => line,
        };
        if function.is_empty() || frames.len() >= crate::limits::MAX_FRAMES * 2 {
            continue;
        }
        let mut frame = Frame::at_address("0x0");
        frame.function = Some(function.into());
        frames.push(frame);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::frames_of;

    #[test]
    fn backtrace_text_becomes_frames_inlined_ones_included() {
        let text = "   0: app::load
             at ./src/main.rs:10:5
   1: core::ops::function::FnOnce::call_once
             at /rustc/abc/library/core/src/ops/function.rs:250:5
      std::sys::backtrace::__rust_begin_short_backtrace
             at /rustc/abc/library/std/src/sys/backtrace.rs:158:18
   2: <unknown>
";
        let frames = frames_of(text, Some(std::path::Path::new("/home/u/app")));
        let names: Vec<_> = frames
            .iter()
            .map(|f| f.function.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "app::load",
                "core::ops::function::FnOnce::call_once",
                "std::sys::backtrace::__rust_begin_short_backtrace",
                "<unknown>"
            ]
        );
        assert_eq!(frames[0].file.as_deref(), Some("/home/u/app/src/main.rs"));
        assert_eq!(
            frames[1].file.as_deref(),
            Some("/rustc/abc/library/core/src/ops/function.rs")
        );
        assert_eq!((frames[0].line, frames[0].column), (Some(10), Some(5)));
        assert_eq!(frames[2].line, Some(158));
        assert_eq!(frames[3].file, None);
    }
}
