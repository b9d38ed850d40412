"""A cell from a morphology file: NEURON's Import3d into a cell object with the standard
section lists, ``nseg`` by the length rule and, optionally, the axon replaced by two stubs.

The steps and their order are BluePyOpt's (``NrnFileMorphology``), so that the same file gives
the same sections, segments and, in the end, the same numbers: Import3d instantiates the
sections into the object, ``nseg = 1 + 2 int(L / length)`` is set on every section, then the
axon is replaced (its stubs get ``1 + 2 int(L / axon_length)`` segments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroptimus.optimization.problem.emodel_spec import SECTION_LISTS
from neuroptimus.optimization.simulators.base import ModelError

TEMPLATE = "NeuroptimusEModelCell"
SECTION_ARRAYS = ("soma", "dend", "apic", "axon", "myelin")

# The section arrays are declared (one placeholder each, deleted in init()) so that Import3d
# and the axon replacement can create them inside the object.
_TEMPLATE_TEXT = f"""
begintemplate {TEMPLATE}
public {", ".join(SECTION_LISTS)}
public {", ".join(SECTION_ARRAYS)}
objref {", ".join(SECTION_LISTS)}
create {", ".join(f"{name}[1]" for name in SECTION_ARRAYS)}
proc init() {{
{chr(10).join(f"    {name} = new SectionList()" for name in SECTION_LISTS)}
    forall delete_section()
}}
endtemplate {TEMPLATE}
"""

_READERS = {".asc": "Import3d_Neurolucida3", ".swc": "Import3d_SWC_read"}


def new_cell(h: Any) -> Any:
    """An empty cell object holding the section lists (the template is defined once)."""
    h.load_file("stdrun.hoc")
    h.load_file("import3d.hoc")
    if not hasattr(h, TEMPLATE):
        h(_TEMPLATE_TEXT)
    return getattr(h, TEMPLATE)()


def import_morphology(h: Any, cell: Any, path: Path) -> None:
    """Read ``path`` with Import3d and instantiate its sections in ``cell``."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ModelError(
            f"morphology {path}: NEURON's Import3d reads {', '.join(_READERS)} files; convert "
            f"this {path.suffix} file to one of them (MorphIO's morphio convert does)"
        )
    if not path.is_file():
        raise ModelError(f"morphology {path}: file not found")
    morphology = getattr(h, reader)()
    morphology.quiet = 1
    h.hoc_stdout("/dev/null")  # Import3d prints a line per section
    try:
        morphology.input(str(path))
    finally:
        h.hoc_stdout()
    importer = h.Import3d_GUI(morphology, 0)
    try:
        importer.instantiate(cell)
    except RuntimeError as error:
        raise ModelError(f"morphology {path}: Import3d cannot build it ({error})") from None
    if len(list(cell.somatic)) == 0:
        raise ModelError(f"morphology {path}: no soma (no section of the somatic list)")


def set_nseg(cell: Any, length_um: float) -> None:
    """``nseg = 1 + 2 int(L / length_um)``: odd, one segment per ``length_um`` and side."""
    for section in cell.all:
        section.nseg = 1 + 2 * int(section.L / length_um)


def replace_axon(h: Any, cell: Any, stub_length_um: float, nseg_length_um: float) -> None:
    """The axon replaced by ``axon[0]`` and ``axon[1]`` of ``stub_length_um / 2`` each, in
    series on the soma's end: the first keeps the first axon section's diameter, the second
    takes the diameter of the first axonal section whose middle lies farther than
    ``stub_length_um`` from the soma's middle (1 µm each without an axon)."""
    axonal = list(cell.axonal)
    diameters = [1.0, 1.0]
    if axonal:
        diameters = [cell.axon[0].diam, cell.axon[0].diam]
    if len(axonal) > 1:
        h.distance(0, 0.5, sec=cell.soma[0])
        for section in axonal:
            if h.distance(1, 0.5, sec=section) > stub_length_um:
                diameters[1] = section.diam
                break
    for section in axonal:
        h.delete_section(sec=section)
    h.execute("create axon[2]", cell)
    for section, diameter in zip(cell.axon, diameters, strict=True):
        section.L = stub_length_um / 2
        section.nseg = 1 + 2 * int(section.L / nseg_length_um)
        section.diam = diameter
        cell.axonal.append(sec=section)
        cell.all.append(sec=section)
    cell.axon[0].connect(cell.soma[0], 1.0, 0.0)
    cell.axon[1].connect(cell.axon[0], 1.0, 0.0)


def build_cell(
    h: Any,
    path: Path,
    nseg_length_um: float | None,
    replace: bool,
    stub_length_um: float = 60.0,
    axon_nseg_length_um: float = 40.0,
) -> Any:
    """The cell of a morphology file, segmented and with its axon replaced as asked."""
    cell = new_cell(h)
    import_morphology(h, cell, path)
    if nseg_length_um is not None:
        set_nseg(cell, nseg_length_um)
    if replace:
        replace_axon(h, cell, stub_length_um, axon_nseg_length_um)
    return cell


def section_list(cell: Any, name: str) -> list[Any]:
    """The sections of one of the standard lists (empty when the morphology has none)."""
    if name not in SECTION_LISTS:
        raise ModelError(f"section list {name!r} is none of {', '.join(SECTION_LISTS)}")
    return list(getattr(cell, name))
