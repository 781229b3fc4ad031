ENV A=1
FROM ubuntu
