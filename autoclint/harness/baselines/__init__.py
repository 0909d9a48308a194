"""Two honest reference submissions: each folder holds a model.py usable as `-code_dir=`."""
