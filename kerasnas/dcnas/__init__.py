"""DCNAS: distribution-consistent local weight sharing (Pan et al., CVPR
2022), a DCNAS-style reading of a paper without public code.

- `DCNASSupernet`: M weight copies per candidate
  (`kerasnas.layers.LocalShareChoice`), an architecture pool with sharing
  states, a meta network per layer and option, the pairwise step (Eq. 8)
  and the meta update (Eq. 12);
- `DCNASSchedule`: Algorithm 1 (warm-up, layer-by-layer pair training,
  K-means clustering and the Eq. 7 copy assignment, final epochs);
- `sample_pool`, `nearest_members`: the pool and the rule that gives an
  architecture outside it a sharing state (ours; not in the paper).

Where the paper is vague, the choices are ours and options (see
`../shared/REFERENCE_NOTES.md` section 5 and the README's DCNAS section).
"""

from kerasnas.dcnas.pool import nearest_members
from kerasnas.dcnas.pool import sample_pool
from kerasnas.dcnas.schedule import DCNASSchedule
from kerasnas.dcnas.supernet import DCNASSupernet
