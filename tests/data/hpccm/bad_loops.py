Stage0 += baseimage(image='ubuntu:22.04')
while True:
    pass
