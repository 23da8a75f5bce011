"""Training procedures (BasicSR's "models"), one per method, selected by a config's `method:`."""

from train.procedures.base import Procedure
from train.procedures.cface import CFaceProcedure
from train.procedures.distill import RecognizerDistillProcedure
from train.procedures.fhgan import FHGANProcedure
from train.procedures.ipfsrgan import IPFSRGANProcedure
from train.procedures.lai import FrozenRecognizerProcedure
from train.procedures.sicnn import SICNNProcedure

PROCEDURES: dict[str, type[Procedure]] = {
    cls.name: cls
    for cls in (
        FrozenRecognizerProcedure,
        SICNNProcedure,
        CFaceProcedure,
        FHGANProcedure,
        IPFSRGANProcedure,
        RecognizerDistillProcedure,
    )
}

__all__ = ["PROCEDURES", "Procedure"]
