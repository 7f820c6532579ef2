"""`replay LOG --out LABEL`: re-run an interaction log and write the label it produces.

Every step's label checksum is compared with the one recorded; a different image, a missing
sidecar file or a diverging step stops the replay with one clear line.
"""
from __future__ import annotations

NAME = "replay"
HELP = "re-run an annotation session's interaction log (.jsonl) and write the resulting label"


def add_arguments(parser):
    parser.add_argument("log", help="interaction log written by an annotation session (.jsonl)")
    parser.add_argument("--out", required=True, help="label file to write (.nii.gz, .nrrd, .mha, ...)")
    parser.add_argument("--image", default=None, help="the image (default: the path in the log's header)")
    parser.add_argument("--initial", default=None,
                        help="the initial label (default: the .initial.nii.gz file beside the log)")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not stop when a step's label differs from the recorded one")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def run(args) -> int:
    import time

    from app.core.replay import describe, open_log_session, replay
    from app.core.volume_io import write_label

    start = time.perf_counter()
    session, header, actions = open_log_session(args.log, image=args.image, initial=args.initial)

    def on_step(entry):
        if not args.quiet:
            print(f"{describe(entry)}: ok")

    replay(session, actions, args.log, verify=not args.no_verify, on_step=on_step)
    written = write_label(session.label, session.volume, args.out)
    print(f"replayed {len(actions)} actions in {time.perf_counter() - start:.1f} s; "
          f"label checksum {session.checksum[:12]}… {'matches the log at every step' if not args.no_verify else '(not verified)'}; "
          f"wrote {written}")
    return 0
