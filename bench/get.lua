-- A static GET (persistent/enabled).
dofile("bench/report.lua")
