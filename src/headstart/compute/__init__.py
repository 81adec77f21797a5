"""Where headstart computes: the device, its precision, and several processes through Accelerate.

:mod:`.device` resolves ``--device`` and owns the precision policy; :mod:`.processes` is the training
step of one process or of several data-parallel ones, which :mod:`.launch` starts
(``headstart fit --processes N``). Nothing here loads accelerate unless a launcher started several
processes, and :mod:`.device` imports torch only when it resolves a device, so that the command
line checks ``--device`` while it parses.
"""
