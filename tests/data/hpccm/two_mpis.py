"""Two MPI implementations in one image: which one the application uses is not in the recipe."""
Stage0 += baseimage(image='ubuntu:22.04')
Stage0 += openmpi(version='4.1.6')
Stage0 += mpich(version='4.2.0')
Stage0 += packages(ospackages=['libfabric-dev'])
