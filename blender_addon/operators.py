"""``world.make_hdr_environment`` and the panorama file browser.

From the UI (``INVOKE_DEFAULT``: the button, F3, File > Import) the operator is modal (:class:`ModalRun`): the
network runs in a worker thread (:class:`.engine.Job`), a timer updates the progress indicator, Esc cancels, and
the scene is changed only at the end, in the main thread. From scripts and in background mode (``EXEC_DEFAULT``)
it runs synchronously; both paths share :func:`prepare` and :func:`apply_result`. Options a caller does not set
are taken from the scene settings shown in the panels.

Heavy modules (ONNX Runtime, ``hdr_core``) are imported on first use, not at registration.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty

from .preferences import get_prefs
from .properties import OPTION_NAMES, get_settings, option_props


class UserError(Exception):
    """A problem to report to the user in one line; the scene is left untouched."""


@dataclass
class Options:
    """One run's options (the operator's, with unset ones taken from the scene settings)."""

    filepath: str
    model: str = "PANOLANET"
    resolution: str = "4096"
    exposure_boost: float = 1.0
    rotation: float = 0.0
    extract_sun: bool = False


@dataclass
class _Input:
    path: str
    ldr: object  # numpy HxWx3 display values
    predictor: object
    model_file: Path
    original_size: tuple[int, int]
    note: str = ""  #: what was done to the input (a partial photo sphere placed on the sphere)


def output_folder() -> tuple[Path, bool]:
    """``(folder for HDR files, pack the images)``: Preferences' folder, else next to the .blend, else a temp
    folder (then the image is packed into the .blend so it survives the temp folder)."""
    prefs = get_prefs()
    blend = bpy.data.filepath
    if prefs.output_dir and (blend or not prefs.output_dir.startswith("//")):
        return Path(bpy.path.abspath(prefs.output_dir)), False
    if blend:
        return Path(blend).parent, False
    return Path(tempfile.gettempdir()) / "lanet_hdr", True


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def prepare(context, opts: Options) -> _Input:
    """Validate the input and load the model. Raises :class:`UserError`; changes nothing."""
    from . import engine, images
    from .imaging import shrink_display_image

    if not opts.filepath:
        raise UserError("Choose an LDR panorama first (the HDR panel's Panorama field, or filepath=)")
    path = bpy.path.abspath(opts.filepath)
    name = os.path.basename(path) or path
    try:
        ldr, note = images.read_ldr_noted(path)
    except images.InputError as e:
        raise UserError(f"{name}: {e}") from None
    original = ldr.shape[1], ldr.shape[0]
    if opts.resolution != "FULL":
        ldr = shrink_display_image(ldr, int(opts.resolution))
    prefs = get_prefs(context)
    try:
        model_file = engine.find_model(opts.model, bpy.path.abspath(prefs.model_path) if prefs.model_path else "")
        predictor = engine.get_predictor(model_file, prefs.threads)
    except engine.ModelNotFoundError as e:
        raise UserError(str(e)) from None
    except ImportError as e:
        raise UserError(" ".join(str(e).split())) from None
    except Exception as e:  # noqa: BLE001  (a broken or foreign .onnx file)
        raise UserError(f"Cannot load the model: {_one_line(e)}") from None
    return _Input(path, ldr, predictor, model_file, original, note)


def apply_result(context, opts: Options, inp: _Input, result, report) -> set[str]:
    """Write the EXR(s), make the world (and the Sun), assign it, ``report(level, message)``. Main thread only."""
    from . import images, world
    from .imaging import unique_path

    t0 = time.perf_counter()
    folder, pack = output_folder()
    stem = Path(inp.path).stem + "_hdr"
    half = get_prefs(context).exr_precision != "FLOAT"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        exr = images.write_exr(unique_path(folder, stem), result.hdr, half)
        world_exr = exr
        if result.sun is not None:
            world_exr = images.write_exr(unique_path(folder, stem + "_nosun"), result.world_hdr, half)
    except OSError as e:
        report({"ERROR"}, f"Cannot write the HDR file in {folder}: {e}")
        return {"CANCELLED"}
    scene = context.scene
    image = images.load_exr(world_exr, pack=pack)
    previous = scene.world
    if previous is not None and previous.users <= 1 and not previous.use_fake_user:
        previous.use_fake_user = True  # keep the old world in the file once nothing uses it
    new_world = world.build_world(image, opts.rotation)
    new_world[world.KEY_SOURCE] = inp.path
    new_world[world.KEY_EXR] = str(exr)
    scene.world = new_world
    settings = get_settings(context)
    if settings is not None and abs(settings.rotation - opts.rotation) > 1e-9:
        settings["rotation"] = opts.rotation  # no update callback: the world is already rotated
    msg = (f"HDR environment from {Path(inp.path).name}: {result.seconds + time.perf_counter() - t0:.1f} s, "
           f"peak {result.peak:.3g}, {result.dynamic_range_stops:.1f} stops")
    if opts.extract_sun:
        if result.sun is not None:
            lamp = world.add_sun_lamp(scene, result.sun, opts.rotation)
            new_world[world.KEY_SUN] = lamp.name
            new_world[world.KEY_SUN_DIR] = list(result.sun.direction)
            msg += (f"; sun {result.sun.strength:.3g} W/m\u00b2 at {result.sun.elevation:.0f}\u00b0 elevation, "
                    f"{result.sun.fraction:.0%} of the light")
        else:
            msg += "; no dominant light to extract"
    if inp.note:
        msg += f"; {inp.note}"
    report({"INFO"}, msg + f" \u2192 {exr.name}")
    return {"FINISHED"}


class ModalRun:
    """The interactive run behind the modal operator: the prediction runs in a worker thread (:class:`.engine.Job`),
    each timer event updates the progress indicator, Esc cancels; the scene changes only at the end, in the main
    thread. The operator's ``invoke``/``modal``/``cancel`` delegate to :meth:`start`/:meth:`step`/:meth:`cancel`.

    ``report(level, message)`` is the operator's ``report``. ``progress`` holds the last value shown (0..1).
    """

    TIMER_STEP = 0.1  #: seconds between timer events

    def __init__(self, opts: Options, report):
        self.opts, self.report = opts, report
        self.job = self.inp = self._timer = None
        self.progress = 0.0

    def start(self, context) -> set[str]:
        """Prepare (see :func:`prepare`), start the job and the timer. ``{'RUNNING_MODAL'}`` or ``{'CANCELLED'}``."""
        from . import engine

        try:
            self.inp = prepare(context, self.opts)
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.job = engine.Job(self.inp.predictor, self.inp.ldr, self.opts.exposure_boost,
                              self.opts.extract_sun).start()
        wm = context.window_manager
        if context.window is not None:
            self._timer = wm.event_timer_add(self.TIMER_STEP, window=context.window)
        wm.progress_begin(0, 100)
        _set_status(context, "Making HDR environment\u2026 (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def step(self, context, event_type: str, event_value: str = "NOTHING") -> set[str]:
        """Handle one event: ``ESC`` press cancels, ``TIMER`` polls the job (and applies its result when done)."""
        from . import engine

        if event_type == "ESC" and event_value == "PRESS":
            self.cancel(context)
            self.report({"WARNING"}, "Make HDR Environment cancelled; nothing was changed")
            return {"CANCELLED"}
        if event_type != "TIMER":
            return {"PASS_THROUGH"}
        if not self.job.done:
            self.progress = max(self.progress, self.job.progress())
            context.window_manager.progress_update(int(100 * self.progress))
            return {"RUNNING_MODAL"}
        self.progress = 1.0
        self._end(context)
        if isinstance(self.job.error, engine.Cancelled):
            return {"CANCELLED"}
        if self.job.error is not None:
            self.report({"ERROR"}, f"HDR prediction failed: {_one_line(self.job.error)}")
            return {"CANCELLED"}
        return apply_result(context, self.opts, self.inp, self.job.result, self.report)

    def cancel(self, context) -> None:
        """Stop the job (ONNX Runtime terminates the running graph) and end the modal UI; nothing is changed."""
        self.job.cancel()
        self._end(context)

    def _end(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        _set_status(context, None)


def _set_status(context, text) -> None:
    if context.workspace is not None:
        context.workspace.status_text_set(text)


class WORLD_OT_make_hdr_environment(bpy.types.Operator):
    """Reconstruct a calibrated HDR from an LDR 360° panorama and light the scene with it (new world)"""

    bl_idname = "world.make_hdr_environment"
    bl_label = "Make HDR Environment"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = {
        "filepath": StringProperty(name="Panorama", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                   description="LDR 360° panorama (2:1 JPEG/PNG, or a partial photo sphere); empty: "
                                               "the scene settings' panorama, else the image the current world uses"),
        **option_props(operator=True),
    }

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def _options(self, context) -> Options:
        """Take every option the caller did not set from the scene settings; the path falls back to the world's."""
        settings = get_settings(context)
        for name in OPTION_NAMES:
            if settings is not None and not self.properties.is_property_set(name):
                setattr(self, name, getattr(settings, name))
        if not self.filepath:
            from .world import environment_image_path

            self.filepath = environment_image_path(context.scene.world)
        return Options(**{name: getattr(self, name) for name in OPTION_NAMES})

    def execute(self, context):
        opts = self._options(context)
        try:
            inp = prepare(context, opts)
        except UserError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        from . import engine

        wm = context.window_manager
        wm.progress_begin(0, 100)
        try:
            wm.progress_update(10)
            result = engine.run_prediction(inp.predictor, inp.ldr, opts.exposure_boost, opts.extract_sun)
            wm.progress_update(90)
        except Exception as e:  # noqa: BLE001
            self.report({"ERROR"}, f"HDR prediction failed: {_one_line(e)}")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        return apply_result(context, opts, inp, result, self.report)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        self._run = ModalRun(self._options(context), self.report)
        started = self._run.start(context)
        if "RUNNING_MODAL" in started:
            context.window_manager.modal_handler_add(self)
        return started

    def modal(self, context, event):
        return self._run.step(context, event.type, event.value)

    def cancel(self, context):  # the window closed, or Blender quits, while running
        self._run.cancel(context)


class WORLD_OT_lanet_hdr_select_panorama(bpy.types.Operator):
    """Choose the LDR 360° panorama (file browser showing images)"""

    bl_idname = "world.lanet_hdr_select_panorama"
    bl_label = "Select LDR Panorama"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    run: BoolProperty(name="Make HDR Environment", default=False, options={"HIDDEN", "SKIP_SAVE"},
                      description="Run Make HDR Environment on the chosen file")

    def invoke(self, context, event):
        settings = get_settings(context)
        if settings is not None and settings.filepath:
            self.filepath = settings.filepath
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = get_settings(context)
        if settings is not None:
            settings.filepath = self.filepath
        if self.run:
            try:
                return bpy.ops.world.make_hdr_environment("INVOKE_DEFAULT", filepath=self.filepath)
            except RuntimeError:  # it has reported its error already
                return {"CANCELLED"}
        return {"FINISHED"}
