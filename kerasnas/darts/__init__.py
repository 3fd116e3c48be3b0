"""Differentiable NAS: DARTS / SNAS supernets and perturbation-based
architecture selection (DARTS-PT)."""

from kerasnas.darts.supernet import RELAXATIONS
from kerasnas.darts.supernet import DartsSupernet
from kerasnas.darts.supernet import check_paired
from kerasnas.darts.supernet import paired
from kerasnas.darts.supernet import temperature
from kerasnas.darts.selection import PerturbationSelector
from kerasnas.darts.selection import argmax_architecture
