"""NAS methods as modules of parts: each declares its choice factory,
supernet class, samplers, callbacks and how its schedule scales to a budget
(`kerasnas.methods.Method`); methods on different axes combine with `+`.

```python
for name in kerasnas.methods.names():
    trained = kerasnas.methods.get(name).train(space, (x, y), epochs, optimizer=..., ...)
```
"""

from kerasnas.methods.base import Combined
from kerasnas.methods.base import Method
from kerasnas.methods.base import alias
from kerasnas.methods.base import get
from kerasnas.methods.base import names
from kerasnas.methods.base import register
from kerasnas.methods.spos import SPOS
from kerasnas.methods.pada import DA
from kerasnas.methods.pada import PA
from kerasnas.methods.pada import PADA
from kerasnas.methods.interchoice import InterChoice
from kerasnas.methods.darts import DARTS
from kerasnas.methods.dcnas import DCNAS
from kerasnas.methods.gmnas import GMNAS
