# (area wrappers go here)
