//! `crashbox symbolicate --debug-file PATH INPUT`: fills in function, file
//! and line of reports captured without local symbolication (a stripped
//! binary, or `Options::symbolicate(false)`), from the binary's debug file.
//!
//! Frames are matched by image: a frame is resolved when its address falls
//! in one of the report's images whose build id (`code_id`) is the debug
//! file's. Its address in the file is `address - image_addr + the file's
//! lowest loaded segment address`, looked up (like the live symbolication,
//! one byte back, since frames hold return addresses) in the DWARF line and
//! inline information, else in the symbol table.
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use addr2line::gimli;
use crashbox::{Frame, Image, Report};

use crate::failure::{run_subcommand, Failure};
use object::{Object, ObjectSection, ObjectSegment};

pub(crate) const USAGE: &str = "usage: crashbox symbolicate --debug-file PATH INPUT\n\n\
    Writes the reports in INPUT (a file collector's JSON lines, or a spool file holding a report)\n\
    to stdout as JSON lines, with function, file and line filled in from PATH: the unstripped\n\
    binary or its separate debug file (objcopy --only-keep-debug), matched by GNU build id.\n\
    Exits 0 when every report matched, 1 when a report has no images or none with PATH's build id\n\
    (each named on stderr; the reports are still written), 2 on a usage error, an unreadable\n\
    INPUT or debug file, a debug file without a build id or without debug info and symbols,\n\
    or a spool file holding a raw capture.";

/// Runs the subcommand with the arguments after `symbolicate`.
pub(crate) fn main(args: &[String]) -> ExitCode {
    run_subcommand("symbolicate", USAGE, args, run)
}

fn parse_args(args: &[String]) -> Result<(String, String), Failure> {
    let mut debug_file = None;
    let mut input = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--debug-file" {
            let Some(path) = rest.next() else {
                return Err(Failure::usage("--debug-file needs a PATH"));
            };
            debug_file = Some(path.clone());
        } else if let Some(path) = arg.strip_prefix("--debug-file=") {
            debug_file = Some(path.to_owned());
        } else if arg.starts_with("--") {
            return Err(Failure::usage(format!("unknown option {arg}")));
        } else if input.is_none() {
            input = Some(arg.clone());
        } else {
            return Err(Failure::usage(format!("unexpected argument {arg}")));
        }
    }
    match (debug_file, input) {
        (Some(debug_file), Some(input)) => Ok((debug_file, input)),
        (None, _) => Err(Failure::usage("--debug-file PATH is required")),
        (_, None) => Err(Failure::usage("INPUT is required")),
    }
}

fn run(args: &[String]) -> Result<ExitCode, Failure> {
    let (debug_path, input_path) = parse_args(args)?;
    let input = std::fs::read_to_string(&input_path)
        .map_err(|e| Failure::fatal(format!("cannot read {input_path}: {e}")))?;
    let mut reports = read_reports(&input, &input_path)?;
    let bytes = std::fs::read(&debug_path)
        .map_err(|e| Failure::fatal(format!("cannot read debug file {debug_path}: {e}")))?;
    let (file, build_id) = open(&bytes, &debug_path)?;
    let sections = dwarf_sections(&file, &debug_path)?;
    let debug = DebugFile::new(&file, build_id, &sections, &debug_path)?;

    let mut mismatches = 0usize;
    for (line, report) in &mut reports {
        let place = format!("report {} ({input_path}:{line})", report.id);
        if report.images.is_empty() {
            eprintln!(
                "crashbox symbolicate: {place} has no images (captured by a crashbox that does \
                 not record them, or on a platform without them): nothing to match \
                 {debug_path} (build id {}) against",
                debug.build_id
            );
            mismatches += 1;
            continue;
        }
        if !report
            .images
            .iter()
            .any(|i| i.code_id.as_deref() == Some(debug.build_id.as_str()))
        {
            let mut seen = String::new();
            for image in &report.images {
                let _ = write!(
                    seen,
                    "\n  {} {}",
                    image.code_id.as_deref().unwrap_or("(no build id)"),
                    image.code_file
                );
            }
            eprintln!(
                "crashbox symbolicate: build id mismatch: {debug_path} has build id {}, but no \
                 image of {place} has it; its images:{seen}",
                debug.build_id
            );
            mismatches += 1;
            continue;
        }
        symbolicate(report, &debug);
    }

    let mut out = std::io::stdout().lock();
    for (_, report) in &reports {
        if writeln!(out, "{}", report.to_json()).is_err() {
            return Err(Failure::fatal("cannot write to stdout"));
        }
    }
    let _ = out.flush();
    if mismatches > 0 {
        eprintln!(
            "crashbox symbolicate: {mismatches} of {} report(s) not symbolicated",
            reports.len()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports in `input` with their line numbers: JSON lines, or a spool
/// file (one JSON object, `{"format":1,"entry":{"type":"report",…}}`).
fn read_reports(input: &str, path: &str) -> Result<Vec<(usize, Report)>, Failure> {
    let first = input.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let spool = serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .filter(|v| v.get("format").is_some() && v.get("entry").is_some());
    if let Some(mut file) = spool {
        let format = file["format"].as_u64().unwrap_or(0);
        if format != 1 {
            return Err(Failure::fatal(format!(
                "{path} is a spool file of format {format}, which this version does not read"
            )));
        }
        let mut entry = file["entry"].take();
        let kind = entry
            .as_object_mut()
            .and_then(|o| o.remove("type"))
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_default();
        return match kind.as_str() {
            "report" => serde_json::from_value::<Report>(entry)
                .map(|r| vec![(1, r)])
                .map_err(|e| Failure::fatal(format!("{path}: unreadable spooled report: {e}"))),
            "captured" => Err(Failure::fatal(format!(
                "{path} is a spool file holding a panic's raw capture, not a finished report, \
                 which is not supported: the next run of the program that wrote it turns it \
                 into a report and sends it (with its images); symbolicate what it sends"
            ))),
            other => Err(Failure::fatal(format!(
                "{path}: unknown spool entry type {other:?}"
            ))),
        };
    }
    let mut reports = Vec::new();
    for (i, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let report = serde_json::from_str::<Report>(line)
            .map_err(|e| Failure::fatal(format!("{path}:{}: not a crashbox report: {e}", i + 1)))?;
        reports.push((i + 1, report));
    }
    Ok(reports)
}

type Reader<'a> = gimli::EndianSlice<'a, gimli::RunTimeEndian>;

/// A DWARF section's bytes, borrowed from the file or decompressed.
type Section<'a> = (gimli::SectionId, Cow<'a, [u8]>);

/// The debug file: its build id, where its lowest segment loads, its DWARF
/// (when it has some) and symbol table.
struct DebugFile<'d> {
    build_id: String,
    base: u64,
    dwarf: Option<addr2line::Context<Reader<'d>>>,
    symbols: object::SymbolMap<object::SymbolMapName<'d>>,
}

/// The parsed file and its build id (a file without one cannot be matched).
fn open<'a>(bytes: &'a [u8], path: &str) -> Result<(object::File<'a>, String), Failure> {
    let file = object::File::parse(bytes)
        .map_err(|e| Failure::fatal(format!("{path} is not an object file: {e}")))?;
    match file.build_id() {
        Ok(Some(id)) if !id.is_empty() => {
            let hex = id.iter().map(|b| format!("{b:02x}")).collect();
            Ok((file, hex))
        }
        _ => Err(Failure::fatal(format!(
            "{path} has no GNU build id, so it cannot be matched to a report's images"
        ))),
    }
}

/// The DWARF sections the file has (compressed ones are an error).
fn dwarf_sections<'a>(file: &object::File<'a>, path: &str) -> Result<Vec<Section<'a>>, Failure> {
    let mut sections = Vec::new();
    for id in ALL_SECTIONS {
        let Some(section) = file.section_by_name(id.name()) else {
            continue;
        };
        let data = section.uncompressed_data().map_err(|e| {
            Failure::fatal(format!(
                "{path}: cannot read its {} section ({e}); a compressed one can be \
                 decompressed with `objcopy --decompress-debug-sections`",
                id.name()
            ))
        })?;
        sections.push((id, data));
    }
    Ok(sections)
}

impl<'d> DebugFile<'d> {
    fn new(
        file: &object::File<'d>,
        build_id: String,
        sections: &'d [Section<'d>],
        path: &str,
    ) -> Result<DebugFile<'d>, Failure> {
        let base = file.segments().map(|s| s.address()).min().unwrap_or(0);
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let has_debug_info = sections
            .iter()
            .any(|(id, data)| *id == gimli::SectionId::DebugInfo && !data.is_empty());
        let dwarf = if has_debug_info {
            let load = |id: gimli::SectionId| -> Result<Reader<'d>, gimli::Error> {
                let data: &'d [u8] = sections
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map_or(&[], |(_, d)| d.as_ref());
                Ok(gimli::EndianSlice::new(data, endian))
            };
            let dwarf = gimli::Dwarf::load(load)
                .map_err(|e| Failure::fatal(format!("{path}: unreadable DWARF: {e}")))?;
            Some(
                addr2line::Context::from_dwarf(dwarf)
                    .map_err(|e| Failure::fatal(format!("{path}: unreadable DWARF: {e}")))?,
            )
        } else {
            None
        };
        let symbols = file.symbol_map();
        if dwarf.is_none() && symbols.symbols().is_empty() {
            return Err(Failure::fatal(format!(
                "{path} has neither debug info nor a symbol table (a stripped binary?): \
                 give the unstripped binary or its separate debug file"
            )));
        }
        Ok(DebugFile {
            build_id,
            base,
            dwarf,
            symbols,
        })
    }

    /// The frames at `probe` (an address in the file), innermost first.
    fn frames_at(&self, probe: u64, address: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let Some(dwarf) = &self.dwarf {
            if let Ok(mut iter) = dwarf.find_frames(probe).skip_all_loads() {
                while let Ok(Some(frame)) = iter.next() {
                    let function = match &frame.function {
                        Some(name) => name.raw_name().ok().map(|n| demangle(&n)),
                        None => self.symbol(probe),
                    };
                    let location = frame.location.as_ref();
                    frames.push(new_frame(
                        function,
                        location.and_then(|l| l.file).map(str::to_owned),
                        location.and_then(|l| l.line),
                        location.and_then(|l| l.column),
                        address,
                    ));
                }
            }
        }
        if frames.is_empty() {
            if let Some(name) = self.symbol(probe) {
                frames.push(new_frame(Some(name), None, None, None, address));
            }
        }
        frames
    }

    fn symbol(&self, probe: u64) -> Option<String> {
        self.symbols.containing(probe).map(|s| demangle(s.name()))
    }
}

/// The DWARF sections addr2line may read.
const ALL_SECTIONS: [gimli::SectionId; 13] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugLoc,
    gimli::SectionId::DebugLocLists,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
    gimli::SectionId::DebugTypes,
];

/// A Rust symbol demangled without its `::h…` hash; other names as they are.
fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    }
}

fn new_frame(
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    address: &str,
) -> Frame {
    let mut frame = Frame::at_address(address);
    frame.function = function.map(Into::into);
    frame.file = file.map(Into::into);
    frame.line = line;
    frame.column = column;
    frame
}

/// Resolves the frames of `report` that fall in the image of `debug`.
fn symbolicate(report: &mut Report, debug: &DebugFile<'_>) {
    let image: Option<&Image> = report
        .images
        .iter()
        .find(|i| i.code_id.as_deref() == Some(debug.build_id.as_str()));
    let Some(start) = image.and_then(Image::start) else {
        return;
    };
    let size = image.map_or(0, |i| i.image_size);
    let old = std::mem::take(&mut report.frames);
    // One entry per captured address, with its symbols innermost first.
    let mut stack: Vec<(usize, Vec<Frame>)> = Vec::with_capacity(old.len());
    let mut i = 0;
    while i < old.len() {
        // Inlined frames share their address: a group is replaced as a whole.
        let address = old[i].address.clone();
        let mut end = i + 1;
        while end < old.len() && old[end].address == address {
            end += 1;
        }
        let value = address
            .strip_prefix("0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let resolved = match value {
            Some(a) if a >= start && a - start < size => {
                // A return address: the call is the byte before it.
                let probe = (a - start).wrapping_add(debug.base).wrapping_sub(1);
                Some(debug.frames_at(probe, &address)).filter(|f| !f.is_empty())
            }
            _ => None,
        };
        let symbols = resolved.unwrap_or_else(|| old[i..end].to_vec());
        let address = value.and_then(|a| usize::try_from(a).ok()).unwrap_or(0);
        stack.push((address, symbols));
        i = end;
    }
    let expanded: usize = stack.iter().map(|(_, symbols)| symbols.len().max(1)).sum();
    // Trimmed and marked in-app as the live symbolication does; without
    // source paths, the release's package is the application's crate.
    let include = report
        .release
        .as_deref()
        .and_then(|r| r.split('@').next())
        .filter(|name| !name.is_empty())
        .map(|name| vec![format!("{}::", name.replace('-', "_"))])
        .unwrap_or_default();
    let frames = crashbox::__frames_from_resolved(report, stack, include);
    if expanded > crashbox::limits::MAX_FRAMES && !report.truncated.iter().any(|t| t == "frames") {
        report.truncated.push("frames".to_owned());
    }
    report.frames = frames;
}
