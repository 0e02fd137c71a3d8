"""A1111's X/Y/Z plot, its parts: up to three axes, each a setting of the field table (axes.py) with values
in A1111's syntax (values.py), declared as settings of their own (fields.py), drawn as labelled grids
(grid.py); A1111's API's `script_name: "x/y/z plot"` maps onto the same settings (a1111.py). The service
layer makes a plot's cells one Plan (studio/service/plot.py) and draws its grids after them (plot_run.py)."""
